"""The comparison of two snapshots into a :class:`~airflow_selfheal.core.drift.report.DriftReport` of events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_selfheal.core.drift.data_types import normalize_type
from airflow_selfheal.core.drift.events import DriftEvent
from airflow_selfheal.core.drift.renames import _greedy_pairs, _score_column_rename, _table_rename_candidates
from airflow_selfheal.core.drift.report import DriftReport

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_selfheal.core.drift.snapshot import ColumnSchema, SchemaSnapshot, TableSchema


def _diff_columns(table: str, old: TableSchema, new: TableSchema) -> list[DriftEvent]:
    """Column events from ``old`` to ``new``, reported against the table key ``table``."""
    old_columns = {column.name: column for column in old.columns}
    new_columns = {column.name: column for column in new.columns}
    events: list[DriftEvent] = []

    def compare(before: ColumnSchema, after: ColumnSchema) -> None:
        if normalize_type(before.data_type) != normalize_type(after.data_type):
            events.append(
                DriftEvent(
                    kind="column_type_changed",
                    table=table,
                    column=after.name,
                    old_type=before.data_type,
                    new_type=after.data_type,
                )
            )
        if before.nullable != after.nullable:
            events.append(
                DriftEvent(
                    kind="column_nullability_changed",
                    table=table,
                    column=after.name,
                    old_nullable=before.nullable,
                    new_nullable=after.nullable,
                )
            )

    for name in old_columns.keys() & new_columns.keys():
        compare(old_columns[name], new_columns[name])

    removed = [old_columns[name] for name in sorted(old_columns.keys() - new_columns.keys())]
    added = [new_columns[name] for name in sorted(new_columns.keys() - old_columns.keys())]
    candidates = []
    for removed_column in removed:
        for added_column in added:
            scored = _score_column_rename(removed_column, added_column)
            if scored is not None:
                candidates.append((scored[0], removed_column.name, added_column.name, scored[1]))
    renamed_old: set[str] = set()
    renamed_new: set[str] = set()
    for confidence, old_name, new_name, reason in _greedy_pairs(candidates):
        before, after = old_columns[old_name], new_columns[new_name]
        events.append(
            DriftEvent(
                kind="column_renamed",
                table=table,
                column=old_name,
                new_column=new_name,
                old_type=before.data_type,
                new_type=after.data_type,
                confidence=confidence,
                reason=reason,
            )
        )
        compare(before, after)
        renamed_old.add(old_name)
        renamed_new.add(new_name)

    events.extend(
        DriftEvent(kind="column_removed", table=table, column=column.name, old_type=column.data_type)
        for column in removed
        if column.name not in renamed_old
    )
    events.extend(
        DriftEvent(kind="column_added", table=table, column=column.name, new_type=column.data_type)
        for column in added
        if column.name not in renamed_new
    )
    return events


def _tables_by_key(snapshot: SchemaSnapshot, label: str) -> dict[str, TableSchema]:
    tables: dict[str, TableSchema] = {}
    for table in snapshot.tables:
        if table.key in tables:
            raise ValueError(
                f"the {label} snapshot holds {table.key} twice ({tables[table.key].fqn} and {table.fqn}); "
                "tables are matched by SCHEMA.NAME, so diff one database at a time"
            )
        tables[table.key] = table
    return tables


def _table_key(name: str) -> str:
    """``schema.table`` or ``database.schema.table`` to the ``SCHEMA.TABLE`` key."""
    parts = [part.strip() for part in name.strip().upper().split(".")]
    return ".".join(parts[-2:])


def diff_snapshots(
    baseline: SchemaSnapshot | None,
    current: SchemaSnapshot,
    *,
    expected_tables: Iterable[str] | None = None,
) -> DriftReport:
    """
    Compare the current snapshot with the baseline, table by table and column by column.

    Tables are matched by ``SCHEMA.NAME`` and columns by name; types are compared after :func:`normalize_type`.
    Renames are inferred as described in the docstring of :mod:`airflow_selfheal.core.drift`.

    :param baseline: the snapshot from the last accepted build, or None if there is none yet.
    :param current: the snapshot just taken.
    :param expected_tables: keys of tables that should exist (declared dbt sources), ``SCHEMA.TABLE`` or
        ``DATABASE.SCHEMA.TABLE``. One missing from both snapshots yields ``table_not_found``; one only in the
        baseline yields ``table_removed`` as usual.
    :return: the report; ``no_baseline`` without a baseline (with only ``table_not_found`` events),
        otherwise ``drift_detected`` when a breaking event is found, else ``clean`` (which may still list
        non-breaking events).
    :raises ValueError: if a snapshot holds the same ``SCHEMA.NAME`` in two databases.
    """
    current_tables = _tables_by_key(current, "current")
    baseline_tables = _tables_by_key(baseline, "baseline") if baseline is not None else {}
    events: list[DriftEvent] = [
        DriftEvent(kind="table_not_found", table=key)
        for key in sorted({_table_key(name) for name in expected_tables or ()})
        if key not in current_tables and key not in baseline_tables
    ]
    if baseline is None:
        return DriftReport(
            status="no_baseline",
            events=tuple(sorted(events, key=DriftEvent.sort_key)),
            baseline_hash=None,
            current_hash=current.content_hash,
        )

    for key in sorted(baseline_tables.keys() & current_tables.keys()):
        old, new = baseline_tables[key], current_tables[key]
        if old.columns != new.columns:
            events.extend(_diff_columns(key, old, new))

    removed = [baseline_tables[key] for key in sorted(baseline_tables.keys() - current_tables.keys())]
    added = [current_tables[key] for key in sorted(current_tables.keys() - baseline_tables.keys())]
    renamed_old: set[str] = set()
    renamed_new: set[str] = set()
    for confidence, old_key, new_key, reason in _greedy_pairs(_table_rename_candidates(removed, added)):
        events.append(
            DriftEvent(
                kind="table_renamed", table=old_key, new_table=new_key, confidence=confidence, reason=reason
            )
        )
        events.extend(_diff_columns(new_key, baseline_tables[old_key], current_tables[new_key]))
        renamed_old.add(old_key)
        renamed_new.add(new_key)
    events.extend(
        DriftEvent(kind="table_removed", table=table.key) for table in removed if table.key not in renamed_old
    )
    events.extend(
        DriftEvent(kind="table_added", table=table.key) for table in added if table.key not in renamed_new
    )

    return DriftReport(
        status="drift_detected" if any(event.breaking for event in events) else "clean",
        events=tuple(sorted(events, key=DriftEvent.sort_key)),
        baseline_hash=baseline.content_hash,
        current_hash=current.content_hash,
    )
