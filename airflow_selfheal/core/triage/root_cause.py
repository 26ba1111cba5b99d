"""
Drift correlation: the upstream schema change (a drift event) that explains a failure, when one fits.

Only breaking events count. Column renames and removals explain a missing column, type changes a type mismatch,
table removals and renames a missing relation; events on the failing node's lineage are preferred.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_selfheal.core.triage.model import FailureClass, RootCause


def _confidence(event: Mapping[str, Any]) -> float:
    """An event's confidence; observed facts (removals, type changes) carry none and count as certain."""
    value = event.get("confidence")
    try:
        return 1.0 if value is None else float(value)
    except (TypeError, ValueError):
        return 0.0


def _upper(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


def _same_relation(error_name: str, event_table: str) -> bool:
    """Match ``ORDERS``, ``RAW.ORDERS`` or ``DB.RAW.ORDERS`` against a drift key by trailing parts."""
    error_parts = [part for part in error_name.upper().replace('"', "").split(".") if part]
    event_parts = [part for part in event_table.upper().replace('"', "").split(".") if part]
    if not error_parts or not event_parts:
        return False
    shorter, longer = sorted((error_parts, event_parts), key=len)
    return longer[-len(shorter) :] == shorter


def _best(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(events, key=_confidence) if events else None


def _is_breaking(event: Mapping[str, Any]) -> bool:
    """An event's ``breaking`` flag; records written before the flag existed are judged from their types."""
    flag = event.get("breaking")
    if isinstance(flag, bool):
        return flag
    if event.get("kind") != "column_type_changed" or not event.get("old_type") or not event.get("new_type"):
        return True
    from airflow_selfheal.core.drift import is_widening

    return not is_widening(str(event["old_type"]), str(event["new_type"]))


def _on_lineage(event: Mapping[str, Any], lineage: Sequence[str]) -> bool:
    """Whether the event's table (or a renamed table's new name) is one the failing node reads."""
    tables = [_upper(event.get("table")), _upper(event.get("new_table"))]
    return any(table and _same_relation(relation, table) for relation in lineage for table in tables)


def _mentioned(text: str, column: str) -> bool:
    """Whether a column name occurs as a word in the error text (DuckDB quotes the failing SQL line)."""
    if not column:
        return False
    return re.search(rf"(?<![\w$]){re.escape(column)}(?![\w$])", text, re.IGNORECASE) is not None


def _type_change_cause(
    events: Sequence[Mapping[str, Any]], wanted: set[str], text: str, lineage: Sequence[str]
) -> Mapping[str, Any] | None:
    """
    The breaking type change that explains a type mismatch, most certain evidence first.

    Engines rarely name the column (``No function matches ... '/(VARCHAR, INTEGER_LITERAL)'``, ``Numeric value
    'abc' is not recognized``), so the candidates are the type changes on the relations the failing node reads
    (when its lineage is known); among them the one whose column the error names, else the one whose column the
    error text mentions, else the only one.
    """
    changes = [event for event in events if event["kind"] == "column_type_changed"]
    if lineage:
        on_lineage = [event for event in changes if _on_lineage(event, lineage)]
        changes = on_lineage or [event for event in changes if _upper(event.get("column")) in wanted]
    for matches in (
        [event for event in changes if _upper(event.get("column")) in wanted],
        [event for event in changes if _mentioned(text, _upper(event.get("column")))],
        changes,
    ):
        if matches:
            # The strongest evidence that matches anything decides; two different columns there is ambiguous.
            distinct = {(_upper(event.get("table")), _upper(event.get("column"))) for event in matches}
            return matches[0] if len(distinct) == 1 else None
    return None


def _root_cause(
    failure_class: FailureClass,
    columns: Sequence[str],
    relations: Sequence[str],
    drift_events: Sequence[Mapping[str, Any]],
    text: str = "",
    lineage: Sequence[str] = (),
) -> RootCause | None:
    """
    Name the upstream change behind a missing column, missing relation or type mismatch, if one fits.

    Non-breaking events (a widened column) never explain a failure and are left out. With ``lineage`` (the
    relations the failing node reads), events on those relations are preferred.
    """
    events = [
        event
        for event in drift_events
        if isinstance(event, Mapping) and event.get("kind") and _is_breaking(event)
    ]
    wanted = {column.upper() for column in columns}
    if failure_class is FailureClass.MISSING_COLUMN and wanted:
        matching = [
            event
            for event in events
            if event["kind"] in ("column_renamed", "column_removed") and _upper(event.get("column")) in wanted
        ]
        if lineage:
            matching = [event for event in matching if _on_lineage(event, lineage)] or matching
        event = _best(matching)
        if event is None:
            return None
        table, column = _upper(event.get("table")), _upper(event.get("column"))
        if event["kind"] == "column_renamed":
            message = (
                f"Upstream rename: {table}.{column} -> {table}.{_upper(event.get('new_column'))} "
                f"(confidence {_confidence(event):.2f})."
            )
            return RootCause("upstream_rename", message, dict(event))
        return RootCause(
            "upstream_column_removed", f"Upstream column removed: {table}.{column}.", dict(event)
        )
    if failure_class is FailureClass.TYPE_MISMATCH:
        event = _type_change_cause(events, wanted, text, lineage)
        if event is None:
            return None
        message = (
            f"Upstream type change: {_upper(event.get('table'))}.{_upper(event.get('column'))} "
            f"{event.get('old_type')} -> {event.get('new_type')}."
        )
        return RootCause("upstream_type_change", message, dict(event))
    if failure_class is FailureClass.MISSING_RELATION and relations:
        matching = [
            event
            for event in events
            if event["kind"] in ("table_removed", "table_renamed", "table_not_found")
            and any(_same_relation(relation, _upper(event.get("table"))) for relation in relations)
        ]
        event = _best(matching)
        if event is None:
            return None
        table = _upper(event.get("table"))
        if event["kind"] == "table_renamed":
            message = (
                f"Upstream table renamed: {table} -> {_upper(event.get('new_table'))} "
                f"(confidence {_confidence(event):.2f})."
            )
        else:
            message = f"Upstream table removed: {table}."
        return RootCause("upstream_table_removed", message, dict(event))
    return None
