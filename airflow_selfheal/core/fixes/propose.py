"""
:func:`propose_fix`: choose the rule from the triage, apply it, and hold the result to the rules file.

The rules in priority order are in :data:`_RULES` (the order of :data:`~airflow_selfheal.core.rules.FIX_TYPES`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.context import _Context
from airflow_selfheal.core.fixes.plan import Escalation, FixPlan, _Draft, _Escalate, jinja_refusal
from airflow_selfheal.core.fixes.rules.accepted_values import _accepted_values
from airflow_selfheal.core.fixes.rules.column_rename import _column_rename
from airflow_selfheal.core.fixes.rules.dedup import _dedup
from airflow_selfheal.core.fixes.rules.drop_unused_column import _drop_unused_column
from airflow_selfheal.core.fixes.rules.source_table_rename import _source_table_rename
from airflow_selfheal.core.fixes.rules.type_cast import _type_cast
from airflow_selfheal.core.rules import FIX_TYPES, RULES_FILE, RulesConfig, floor_refusal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


def propose_fix(
    *,
    triage: Mapping[str, Any],
    incident: Mapping[str, Any],
    project_files: Mapping[str, str],
    manifest: Mapping[str, Any],
    rules: RulesConfig,
    failing_rows: Sequence[Mapping[str, Any]] = (),
) -> FixPlan | Escalation:
    """
    Choose and apply the deterministic rule for a failure, or say why none applies.

    Pure: reads only its arguments. The rule comes from the triage: its ``root_cause`` (an upstream rename,
    type change, column removal or table rename) or else its failure class (``test_unique``,
    ``test_accepted_values``). A rule not listed in ``auto_propose``, a protected model, a path the hard floor
    refuses or outside ``allowed_paths``, SQL the rewriter cannot parse or resolve with certainty, a removed
    column still in use, text from the warehouse (a column name, a type, a failing value) holding a Jinja
    delimiter, or a file that would gain Jinja all give an :class:`Escalation` saying so.

    :param triage: ``Triage.to_dict()`` of the failure.
    :param incident: ``Incident.to_dict()``; its ``incident_id`` and failing ``nodes`` are read.
    :param project_files: project-relative path to text for the sandbox copy of the dbt project: at least the
        SQL and YAML files the rule reads, and ``dbt_project.yml`` for the test path.
    :param manifest: the project's ``manifest.json`` (nodes, sources, child_map).
    :param rules: from :func:`~airflow_selfheal.core.rules.load_rules`.
    :param failing_rows: the rows the failed data test returned when re-run read-only on the clone (its
        compiled SQL); ``accepted_values`` reads their ``value_field`` (any case) to learn the new values.
    :return: a :class:`FixPlan`, or an :class:`Escalation` naming what blocked it.
    """
    try:
        fix_type = _choose_rule(triage)
    except _Escalate as exc:
        return Escalation(exc.reason)
    if not rules.allows(fix_type):
        return Escalation(
            f"a {fix_type} fix applies, but auto_propose in {RULES_FILE} does not list {fix_type}", fix_type
        )
    try:
        context = _Context.build(incident, project_files, manifest, rules)
        draft = _RULES[fix_type](context, triage, failing_rows)
        if not draft.changes:
            raise _Escalate(f"the {fix_type} rule found nothing to change")
        for path in sorted(draft.changes):
            floor = floor_refusal(path, rules.allowed_paths)
            if floor is not None:
                raise _Escalate(f"the {fix_type} fix would change {path}, but {floor}")
            if not rules.is_path_allowed(path):
                raise _Escalate(
                    f"the {fix_type} fix would change {path}, which allowed_paths in {RULES_FILE} does not allow"
                )
        gained = jinja_refusal(draft.changes, project_files)
        if gained is not None:
            raise _Escalate(f"the {fix_type} fix was not proposed: {gained}")
    except _Escalate as exc:
        return Escalation(exc.reason, fix_type)
    return FixPlan(
        fix_type=fix_type,
        tier=rules.tier(fix_type),
        rationale="\n".join(draft.rationale),
        changes=dict(sorted(draft.changes.items())),
        guard_tests=dict(sorted(draft.guard_tests.items())),
        priority=FIX_TYPES.index(fix_type) + 1,
    )


def _choose_rule(triage: Mapping[str, Any]) -> str:
    root_cause = triage.get("root_cause") or {}
    kind = root_cause.get("kind")
    evidence = root_cause.get("evidence") or {}
    if kind == "upstream_rename":
        return "column_rename"
    if kind == "upstream_type_change":
        return "type_cast"
    if kind == "upstream_column_removed":
        return "drop_unused_column"
    if kind == "upstream_table_removed":
        if evidence.get("kind") == "table_renamed" and evidence.get("new_table"):
            return "source_table_rename"
        raise _Escalate(
            f"no deterministic rule for upstream_table_removed: {root_cause.get('message') or 'a table is gone'}"
        )
    failure_class = str(triage.get("failure_class") or "unknown")
    if failure_class == "test_unique":
        return "dedup"
    if failure_class == "test_accepted_values":
        return "accepted_values"
    raise _Escalate(f"no deterministic rule for {failure_class}")


_RULES: dict[str, Callable[[_Context, Mapping[str, Any], Sequence[Mapping[str, Any]]], _Draft]] = {
    "column_rename": _column_rename,
    "type_cast": _type_cast,
    "drop_unused_column": _drop_unused_column,
    "source_table_rename": _source_table_rename,
    "dedup": _dedup,
    "accepted_values": _accepted_values,
}
