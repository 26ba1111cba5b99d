"""Rule 4, ``source_table_rename``: the source's ``identifier`` is set to the new table name, its name kept."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.guard_tests import _contract_guard
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate, _from_outside
from airflow_selfheal.core.fixes.sql_names import _PLAIN_STORED
from airflow_selfheal.core.fixes.wording import _evidence_message
from airflow_selfheal.core.fixes.yaml_edit import (
    _check_yaml,
    _get,
    _insert_key_after,
    _replace_scalar,
    _source_table,
    _value,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.fixes.context import _Context


def _source_table_rename(
    context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    source = context.find_source(str(evidence.get("table")))
    new_key = _from_outside(evidence.get("new_table") or "", "the new table name of the rename").replace(
        '"', ""
    )
    new_schema, _, new_table = new_key.rpartition(".")
    if new_schema and new_schema.casefold() != source.schema.casefold():
        raise _Escalate(
            f"{source.label} moved from schema {source.schema} to {new_schema}; changing a source's schema "
            "affects all its tables, so a person must decide"
        )
    if not _PLAIN_STORED.fullmatch(new_table):
        raise _Escalate(f"the new table name {new_table!r} needs quoting; a person must declare it")
    text = context.read(source.yaml_path)
    table = _source_table(source, text)
    name_node = _value(table, "name")
    written = str(name_node.node.value) if name_node is not None else source.name
    identifier = new_table.lower() if written == written.lower() else new_table
    existing = _value(table, "identifier")
    if existing is not None:
        updated = _replace_scalar(text, existing.node, identifier)
    else:
        updated = _insert_key_after(text, table, "name", "identifier", identifier)

    def set_identifier(data: Any) -> None:
        _get(data, table.path)["identifier"] = identifier

    _check_yaml(text, updated, source.yaml_path, set_identifier)
    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the source {source.label} now points at the table {identifier} (`identifier: {identifier}` in "
            f"{source.yaml_path}); its name stays {source.name}, so every source('{source.source_name}', "
            f"'{source.name}') and everything downstream is unchanged.",
        ],
        changes={source.yaml_path: updated},
    )
    guard_path, guard, _ = _contract_guard(
        context, source, draft.changes, f"{source.label} was renamed upstream to {new_key}."
    )
    draft.add_guard(guard_path, guard)
    draft.rationale.append(
        f"Guard: {guard_path} reads {source.label} with the columns the models use and returns no rows; if the "
        "table or a column moves again, it fails there, at the source."
    )
    return draft
