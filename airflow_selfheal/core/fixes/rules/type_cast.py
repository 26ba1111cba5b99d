"""
Rule 2, ``type_cast`` (an upstream type change): every reference becomes a cast back to the old type.

``try_cast(COL as <old type>)``, or ``cast`` when the new type is not a string (Snowflake's ``TRY_CAST`` takes
only strings), keeping the output name. With ``try_cast`` the guard test reports the values that do not convert.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift import normalize_type
from airflow_selfheal.core.fixes.context import _SQL_READERS, _Context
from airflow_selfheal.core.fixes.guard_tests import _comment, _contract_guard
from airflow_selfheal.core.fixes.plan import _Draft, _Escalate, _from_outside
from airflow_selfheal.core.fixes.sql_edit import _edit_macro_arguments_to, _replace_columns
from airflow_selfheal.core.fixes.sql_names import _sql_name
from airflow_selfheal.core.fixes.sql_parse import DIALECT
from airflow_selfheal.core.fixes.sql_scope import _analyse_reader
from airflow_selfheal.core.fixes.wording import _evidence_message, _names

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


_PLAIN_TYPE = re.compile(r"[a-z][a-z0-9_]*(?: [a-z][a-z0-9_]*)*(?:\(\d+(?:, \d+)*\))?")


def _type_text(data_type: str) -> str:
    """A canonical type as new SQL text, e.g. ``NUMBER(10,2)`` to ``number(10, 2)``."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    text = re.sub(r"\s*,\s*", ", ", data_type.strip()).lower()
    # sqlglot builds a type from a prefix and ignores the rest ("varchar) ~ x" is VARCHAR), and the text goes
    # into SQL and into macro arguments as written: only a plain type name with numeric arguments passes.
    if not _PLAIN_TYPE.fullmatch(text):
        raise _Escalate(f"{data_type!r} is not a type the rewriter can cast to")
    try:
        exp.DataType.build(text, dialect=DIALECT)
    except (SqlglotError, ValueError):
        raise _Escalate(f"{data_type!r} is not a type the rewriter can cast to") from None
    return text


def _type_cast(context: _Context, triage: Mapping[str, Any], _rows: Sequence[Mapping[str, Any]]) -> _Draft:
    evidence = dict((triage.get("root_cause") or {}).get("evidence") or {})
    column = _from_outside(evidence.get("column") or "", "the column name of the type change")
    old_type = _from_outside(evidence.get("old_type") or "", "the old type of the type change")
    new_type = _from_outside(evidence.get("new_type") or "", "the new type of the type change")
    if not column or not old_type or not new_type:
        raise _Escalate("the type-change evidence names no column or no types")
    source = context.find_source(str(evidence.get("table")))
    target = _type_text(normalize_type(str(old_type)))
    from_string = normalize_type(str(new_type)).startswith("VARCHAR")
    function = "try_cast" if from_string else "cast"

    draft = _Draft(
        [
            f"Evidence: {_evidence_message(evidence)}",
            f"Fix: the models reading {source.label} directly cast {column} back to {target} with an explicit "
            f"{function}, keeping the output name, so downstream sees the type it was built for."
            + (
                " try_cast is safe here: the new type is a string, and a value that does not convert becomes null "
                "instead of failing the model (the guard test reports such values)."
                if from_string
                else " cast is used because Snowflake's try_cast accepts only string input."
            ),
        ]
    )
    edited = []
    for reader in context.direct_readers(source):
        if reader.get("resource_type") not in _SQL_READERS:
            continue
        analysis = _analyse_reader(context, reader, source, column, macro_arguments=True)
        if analysis is None:
            continue
        sql = analysis.sql
        if analysis.exposes(analysis.root):
            raise _Escalate(
                f"{sql.path} selects * from {source.label}, so {column} reaches its output uncast; a person "
                "must list the columns first"
            )
        uses = analysis.source_uses(column)
        if not uses and not analysis.macro_uses:
            continue
        context.check_editable(reader)
        macro_edits = {}
        for placeholder, spans in analysis.macro_uses.items():
            written = sql.masked.segments[placeholder][spans[0][0] : spans[0][1]]
            macro_edits[placeholder] = _edit_macro_arguments_to(
                analysis, placeholder, f"{function}({written} as {target})"
            )
        draft.changes[sql.path] = _replace_columns(
            sql, uses, lambda _column, written: f"{function}({written} as {target})", macro_edits
        )
        edited.append(f"{sql.name} ({sql.path})")
        if macro_edits:
            draft.rationale.append(
                f"{sql.name} passes {column} to a macro by name; the macro is given the cast expression instead "
                "(macros that build SQL from the argument, as dbt macros do, then read the cast value). "
                "Validation in the clone shows whether this macro does."
            )
    if not edited:
        raise _Escalate(
            f"no model reading {source.label} directly references {column}; the failure is elsewhere"
        )
    draft.rationale.append(f"Changed: {_names(edited)}.")

    name = _sql_name(column)
    if from_string:
        guard_path = context.guard_path(source.source_name, source.name, column, "castable")
        comment = _comment(
            context,
            f"{source.label}.{column} changed type from {old_type} to {new_type}, and the models cast it back",
            f"with try_cast. This test returns the values that do not convert to {target}, which try_cast would",
            "otherwise turn into silent nulls.",
        )
        guard = (
            f"{comment}select {name}\nfrom {source.jinja}\n"
            f"where {name} is not null\n    and try_cast({name} as {target}) is null\n"
        )
        draft.rationale.append(
            f"Guard: {guard_path} fails when a value of {column} does not convert to {target}, so no data is "
            "lost to nulls without a failing test."
        )
    else:
        guard_path, guard, _ = _contract_guard(
            context,
            source,
            draft.changes,
            f"{source.label}.{column} changed type from {old_type} to {new_type}.",
        )
        draft.rationale.append(
            f"Guard: {guard_path} checks that the columns the models read are still there."
        )
    draft.add_guard(guard_path, guard)
    return draft
