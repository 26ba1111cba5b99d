"""
What the data-test rules (``dedup``, ``accepted_values``) share.

The failed generic test, the staging model it tests, its column, and the expression over the source that
produces an output column.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.jinja import _PLACEHOLDER_PREFIX
from airflow_selfheal.core.fixes.plan import _Escalate

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlglot import exp

    from airflow_selfheal.core.fixes.context import _Context, _Source
    from airflow_selfheal.core.fixes.sql_scope import _Analysis


def _failed_test(context: _Context, triage: Mapping[str, Any], test_name: str) -> dict[str, Any]:
    """The failed generic test's manifest node, from the incident's nodes or the triage's identifiers."""
    candidates = [
        str(node.get("unique_id")) for node in context.incident_nodes if node.get("resource_type") == "test"
    ]
    identifiers = {str(item) for item in triage.get("identifiers") or ()}
    for unique_id, node in sorted(context.manifest["nodes"].items()):
        if isinstance(node, dict) and node.get("resource_type") == "test" and node.get("name") in identifiers:
            candidates.append(unique_id)
    for unique_id in candidates:
        node = context.node(unique_id)
        metadata = node.get("test_metadata") if node else None
        if node is not None and isinstance(metadata, dict) and metadata.get("name") == test_name:
            if metadata.get("namespace") not in (None, "dbt"):
                raise _Escalate(
                    f"{node.get('name')} is the {metadata.get('namespace')}.{test_name} test, not dbt's"
                )
            return node
    raise _Escalate(f"cannot find the failed {test_name} test in the manifest")


def _staging_model(context: _Context, test: Mapping[str, Any]) -> tuple[dict[str, Any], _Source]:
    attached = str(test.get("attached_node") or "")
    if not attached:
        parents = [str(parent) for parent in (test.get("depends_on") or {}).get("nodes") or ()]
        attached = parents[0] if len(parents) == 1 else ""
    if attached.startswith("source."):
        raise _Escalate(
            f"{test.get('name')} tests the source itself; the problem is in the raw data, which no model change "
            "fixes"
        )
    model = context.node(attached)
    if model is None or model.get("resource_type") != "model":
        raise _Escalate(f"{test.get('name')} is not attached to a model")
    sources = [
        str(parent)
        for parent in (model.get("depends_on") or {}).get("nodes") or ()
        if str(parent).startswith("source.")
    ]
    if len(sources) != 1:
        raise _Escalate(
            f"{model.get('name')} is not a staging model reading exactly one source; the fix belongs in transform "
            "logic, which needs a person"
        )
    source = context.source(sources[0])
    context.check_editable(model)
    return model, source


def _test_column(test: Mapping[str, Any]) -> str:
    metadata = test.get("test_metadata") or {}
    column = test.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    if not isinstance(column, str) or not re.fullmatch(r"[A-Za-z_][\w$]*", column):
        raise _Escalate(f"{test.get('name')} tests {column!r}, which is not a plain column")
    return column


def _origin(analysis: _Analysis, output: str) -> exp.Expr | None:
    """
    The expression over the source's own columns that produces an output column, followed through CTEs.

    :return: None when the output is computed from anything but the one source table.
    """
    from sqlglot import exp

    wanted = output.upper()
    scope: Any = analysis.root
    for _ in range(len(analysis.scopes) + 1):
        select = scope.expression
        if not isinstance(select, exp.Select):
            return None
        sources = [source for _, source in scope.selected_sources.values()]
        if len(sources) != 1:
            return None
        only = sources[0]
        match = next((item for item in select.expressions if str(item.alias_or_name).upper() == wanted), None)
        if match is None:
            if not any(isinstance(item, exp.Star) for item in select.expressions):
                return None
            expression: exp.Expr = exp.column(wanted.lower())
        else:
            expression = match.this if isinstance(match, exp.Alias) else match
        if isinstance(only, exp.Table):
            if not analysis.is_raw(only):
                return None
            if any(
                column.name.lower().startswith(_PLACEHOLDER_PREFIX)
                for column in expression.find_all(exp.Column)
            ):
                return None
            return expression
        if not isinstance(expression, exp.Column):
            return None
        wanted = expression.name.upper()
        scope = only
    return None
