"""
Rule 5, ``dedup`` (a failed ``unique`` test on a staging model): a ``qualify row_number() ... = 1`` keeps one row.

The most recently loaded row per key survives when the source has a ``loaded_at_field`` the model can name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.guard_tests import _comment
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate
from airflow_selfheal.core.fixes.rules.failed_test import _failed_test, _origin, _staging_model, _test_column
from airflow_selfheal.core.fixes.sql_edit import _finish, _line_bounds, _tokens
from airflow_selfheal.core.fixes.sql_names import _spell, _sql_name, _stored
from airflow_selfheal.core.fixes.sql_parse import DIALECT, _load_sql
from airflow_selfheal.core.fixes.sql_scope import _Analysis, _span
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.fixes.context import _Context


def _dedup(context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]) -> _Draft:
    from sqlglot import exp

    test = _failed_test(context, triage, "unique")
    model, source = _staging_model(context, test)
    key = _test_column(test)
    sql = _load_sql(context, model)
    analysis = _Analysis(sql, source)
    root = sql.tree
    if not isinstance(root, exp.Select):
        raise _Escalate(f"{sql.name} ends in a set operation; a person must place the dedup")
    for clause in ("group", "qualify", "order", "limit", "offset", "having"):
        if root.args.get(clause):
            raise _Escalate(
                f"{sql.name} already has a {clause.replace('group', 'group by')} clause; a person must place the dedup"
            )
    origin = _origin(analysis, key)
    if not isinstance(origin, exp.Column):
        raise _Escalate(
            f"{sql.name}.{key} is not a column of {source.label}; a person must decide the dedup key"
        )
    source_key = _stored(origin.this)

    tokens = _tokens(sql)
    if tokens and tokens[-1].token_type.name == "SEMICOLON":
        raise _Escalate(f"{sql.path} ends with a semicolon, which dbt models must not have")
    depth = 0
    indent = ""
    for token in tokens:
        if token.token_type.name == "L_PAREN":
            depth += 1
        elif token.token_type.name == "R_PAREN":
            depth -= 1
        elif token.token_type.name == "SELECT" and depth == 0:
            line_start, _ = _line_bounds(sql.masked.text, token.start)
            line = sql.masked.text[line_start : token.start]
            indent = line[: len(line) - len(line.lstrip(" \t"))]
            break

    order = key
    ordered_by = "the key itself (no loaded-at column is known), so which duplicate survives is arbitrary"
    loaded_at = source.loaded_at_field
    if loaded_at is not None:
        loaded_stored = loaded_at.strip('"') if loaded_at.startswith('"') else loaded_at.upper()
        visible = _visible_name(analysis, loaded_stored)
        if visible is not None:
            order = f"{visible} desc"
            ordered_by = (
                f"the source's loaded-at column {loaded_at}, newest first, so the latest copy survives"
            )
    condition = f"row_number() over (partition by {key} order by {order}) = 1"
    body = sql.masked.text.rstrip()
    trailing = sql.masked.text[len(body) :] or "\n"
    edited = f"{body}\n{indent}qualify {condition}{trailing}"
    root.qualify(condition, dialect=DIALECT, copy=False)
    new_text = _finish(sql, edited, root)

    name = _sql_name(source_key)
    guard_path = context.guard_path(source.source_name, source.name, source_key, "duplicates")
    comment = _comment(
        context,
        f"{test.get('name')} found duplicate {key} values in {sql.name}, which now keeps one row per key.",
        f"This warn-level test reports the duplicate {source_key} values arriving in {source.label}, so they stay",
        "visible at the source instead of being silently dropped.",
    )
    guard = (
        f"{{{{ config(severity='warn') }}}}\n{comment}select {name}, count(*) as copies\n"
        f"from {source.jinja}\ngroup by {name}\nhaving count(*) > 1\n"
    )
    draft = _Draft(
        [
            f"Evidence: the unique test {test.get('name')} failed on {sql.name}.{key}"
            + (f" ({_one_line(triage.get('summary'))})" if triage.get("summary") else "")
            + ".",
            f"Fix: {sql.name} ({sql.path}) keeps one row per {key} with `qualify {condition}`, ordered by "
            f"{ordered_by}.",
            "Review: deduplicating hides rows; check that the duplicates are true copies, not distinct events "
            "sharing a key.",
            f"Guard: {guard_path} warns with the duplicate keys of {source.label} on every build.",
        ],
        changes={sql.path: new_text},
    )
    draft.add_guard(guard_path, guard)
    return draft


def _visible_name(analysis: _Analysis, source_column: str) -> str | None:
    """How the root select can name a source column: as the model writes it, or as a CTE's output carrying it."""
    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope

    verdicts = {id(use.column): use.verdict for use in analysis.uses}
    scope = analysis.root
    for _ in range(len(analysis.scopes) + 1):
        sources = [source for _, source in scope.selected_sources.values()]
        if len(sources) != 1:
            return None
        only = sources[0]
        if isinstance(only, exp.Table):
            if not analysis.is_raw(only):
                return None
            for use in analysis.uses:
                if use.verdict == "source" and _stored(use.column.this) == source_column:
                    return analysis.sql.written(*_span(use.column.this))
            return _spell(source_column, "lower")
        if not isinstance(only, Scope) or not isinstance(only.expression, exp.Select):
            return None
        if analysis.is_raw(only):  # a `*` passes the source's columns on under their own names
            scope = only
            continue
        for item in only.expression.expressions:
            inner = item.this if isinstance(item, exp.Alias) else item
            if (
                isinstance(inner, exp.Column)
                and verdicts.get(id(inner)) == "source"
                and _stored(inner.this) == source_column
            ):
                return str(item.alias_or_name)
        return None
    return None
