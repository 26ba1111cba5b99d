"""
Guard tests: singular tests named ``selfheal_guard_*`` that would have caught a failure at the source.

The shared one is the source's column contract: it selects every column of the source the models read and
returns no rows, so a rename or drop fails there, naming the column. Rules write their own guards with
:func:`_comment` as the header.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from airflow_selfheal.core.fixes.context import _SQL_READERS, _Context, _path_of, _Source
from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.sql_names import _sql_name
from airflow_selfheal.core.fixes.sql_parse import _load_sql
from airflow_selfheal.core.fixes.sql_scope import _Analysis
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Mapping


def _comment(context: _Context, *sentences: str) -> str:
    text = f"Guard test written by airflow-selfheal for {context.incident_id}. " + " ".join(
        _one_line(sentence) for sentence in sentences
    )
    return "\n".join(textwrap.wrap(text, width=106, initial_indent="-- ", subsequent_indent="-- ")) + "\n"


def _contract_guard(
    context: _Context, source: _Source, changes: Mapping[str, str], why: str
) -> tuple[str, str, list[str]]:
    """A singular test reading every column of the source the direct readers use, returning no rows."""
    columns: list[str] = []
    for reader in context.direct_readers(source):
        if reader.get("resource_type") not in _SQL_READERS:
            continue
        path = _path_of(reader)
        text = changes.get(path, context.files.get(path))
        if text is None:
            continue
        try:
            analysis = _Analysis(_load_sql(context, reader, text), source)
        except _Escalate:
            continue  # a file the rewriter cannot read adds nothing certain to the contract
        columns.extend(name for name in analysis.contract() if name not in columns)
    select_list = ",\n".join(f"    {_sql_name(name)}" for name in columns) if columns else "    *"
    comment = _comment(
        context,
        why,
        f"This test reads the columns of {source.label} that the models use and returns no rows, so `dbt build`",
        "fails here, naming the source, if one of them is renamed or dropped again.",
    )
    body = f"{comment}select\n{select_list}\nfrom {source.jinja}\nwhere false\n"
    return context.guard_path(source.source_name, source.name, "columns"), body, columns
