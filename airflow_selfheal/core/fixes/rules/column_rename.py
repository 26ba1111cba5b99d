"""
Rule 1, ``column_rename`` (an upstream rename): the files reading the source directly read the new column.

A bare ``OLD`` in a select list becomes ``NEW as OLD``, so every output name stays and downstream is untouched.
A macro given the column by name is given the new name. The source YAML's column entry is renamed too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.context import _SQL_READERS, _Context
from airflow_selfheal.core.fixes.guard_tests import _contract_guard
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate, _from_outside
from airflow_selfheal.core.fixes.sql_edit import _edit_macro_arguments_to, _replace_columns
from airflow_selfheal.core.fixes.sql_names import _PLAIN_STORED, _spell
from airflow_selfheal.core.fixes.sql_scope import _analyse_reader, _span
from airflow_selfheal.core.fixes.wording import _evidence_message, _names
from airflow_selfheal.core.fixes.yaml_edit import (
    _check_yaml,
    _get,
    _named,
    _replace_scalar,
    _source_table,
    _value,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlglot import exp


def _column_rename(
    context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]
) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    old = _from_outside(evidence.get("column") or "", "the old column name of the rename")
    new = _from_outside(evidence.get("new_column") or "", "the new column name of the rename")
    if not old or not new:
        raise _Escalate("the rename evidence names no old or no new column")
    source = context.find_source(str(evidence.get("table")))
    confidence = evidence.get("confidence")
    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the files reading {source.label} directly now read {new} where they read {old}. A bare "
            f"{old.lower()} in a select list becomes `{new.lower()} as {old.lower()}`, so every output column "
            "keeps its name and nothing downstream changes.",
        ]
    )
    edited: list[str] = []
    for reader in context.direct_readers(source):
        analysis = _analyse_reader(context, reader, source, old, macro_arguments=True)
        if analysis is None:
            continue
        sql = analysis.sql
        if reader.get("resource_type") in _SQL_READERS and analysis.exposes(analysis.root):
            raise _Escalate(
                f"{sql.path} selects * from {source.label}, so its output would change from {old} to {new}; "
                "a person must decide the output name"
            )
        uses = analysis.source_uses(old)
        if not uses and not analysis.macro_uses:
            continue
        context.check_editable(reader)

        def rename(column: exp.Column, written: str) -> str:
            offset = _span(column.this)[0] - _span(column)[0]  # past the qualifier, e.g. "o."
            return written[:offset] + _spell(new, written[offset:])

        # A macro given the column by name (``{{ cents_to_dollars('amount_cents') }}``) is given the new name.
        macro_edits = {}
        for placeholder, spans in analysis.macro_uses.items():
            written = sql.masked.segments[placeholder][spans[0][0] : spans[0][1]]
            macro_edits[placeholder] = _edit_macro_arguments_to(analysis, placeholder, _spell(new, written))
        draft.changes[sql.path] = _replace_columns(sql, uses, rename, macro_edits)
        count = len(uses) + sum(len(spans) for spans in analysis.macro_uses.values())
        edited.append(f"{sql.name} ({sql.path}, {count} reference{'s' if count != 1 else ''})")
    if not edited:
        raise _Escalate(
            f"no model reading {source.label} directly references {old}; the failure is elsewhere"
        )
    draft.rationale.append(f"Changed: {_names(edited)}.")

    yaml_text = context.files.get(source.yaml_path)
    if yaml_text is not None:
        table = _source_table(source, yaml_text)
        entry = _named(_value(table, "columns"), old, fold=True)
        if entry is not None and _named(_value(table, "columns"), new, fold=True) is not None:
            draft.rationale.append(
                f"{source.yaml_path} already declares {new}; its {old} entry is left for a person to merge."
            )
        elif entry is not None:
            name = _value(entry, "name")
            if name is None:
                raise _Escalate(f"cannot read the column entry of {old} in {source.yaml_path}")
            written = str(name.node.value)
            new_name = (
                new if written == written.upper() else new.lower() if written == written.lower() else new
            )
            if not _PLAIN_STORED.fullmatch(new):
                raise _Escalate(f"{new} needs quoting; a person must declare it in {source.yaml_path}")
            updated = _replace_scalar(yaml_text, name.node, new_name)

            def set_name(data: Any) -> None:
                _get(data, entry.path)["name"] = new_name

            _check_yaml(yaml_text, updated, source.yaml_path, set_name)
            draft.changes[source.yaml_path] = updated
            draft.rationale.append(
                f"The column entry of {source.label} in {source.yaml_path} is renamed to {new_name}, so its "
                "description and tests follow the data."
            )

    guard_path, guard, _ = _contract_guard(
        context, source, draft.changes, f"{source.label}.{old} was renamed upstream to {new}."
    )
    draft.add_guard(guard_path, guard)
    if confidence is not None:
        draft.rationale.append(
            f"The rename is inferred (confidence {float(confidence):.2f}); validation will tell."
        )
    draft.rationale.append(
        f"Guard: {guard_path} selects the columns of {source.label} the models read, {new} included, and "
        "returns no rows; a future rename or drop fails there, at the source, with the column's name."
    )
    return draft
