"""
Verification of a clone against its source, after every step and on demand.

It compares the objects, each one's columns and each table's row count, and lists the views that still read the
source.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from airflow_selfheal.core.clone_sql import row_counts_query, scan_prod_references
from airflow_selfheal.core.drift import SchemaSnapshot, diff_snapshots
from airflow_selfheal.hooks.snowflake_clone.results import CloneResult
from airflow_selfheal.hooks.snowflake_clone.state import (
    ObjectKey,
    _CloneState,
    _Inventory,
    _key_text,
    _reason,
)

if TYPE_CHECKING:
    from collections.abc import Sequence


#: Tables per ``COUNT(*)`` statement; one statement per chunk keeps the SQL text bounded.
COUNT_CHUNK = 100


class _Verification(_CloneState):
    """The verification steps of a clone attempt."""

    def _verify(
        self,
        incident_id: str,
        strategy: str,
        created_at: datetime,
        source: _Inventory,
        clone: _Inventory,
        expected_tables: list[ObjectKey],
        expected_views: list[ObjectKey],
    ) -> CloneResult:
        for key in [*expected_tables, *expected_views]:
            if key not in clone.tables and key not in clone.views:
                self.missing.setdefault(_key_text(key), "not in the clone")
        present_tables = [key for key in expected_tables if key in clone.tables]
        present_views = [key for key in expected_views if key in clone.views]

        for key, differences in self._column_differences(
            source, clone, [*present_tables, *present_views]
        ).items():
            hint = (
                " (the clone is of an earlier moment; the schema may have changed since)"
                if key in self.at_applied
                else ""
            )
            self.missing.setdefault(_key_text(key), f"columns differ from the source: {differences}{hint}")

        from snowflake.connector.errors import ProgrammingError

        counts_compared = True
        clone_counts: dict[ObjectKey, int] = {}
        try:
            clone_counts = self._row_counts(self.clone, present_tables, None)
            source_counts = self._row_counts(
                self.source, [key for key in present_tables if key not in self.at_applied], None
            )
            source_counts.update(
                self._row_counts(
                    self.source, [key for key in present_tables if key in self.at_applied], self.at
                )
            )
        except ProgrammingError as exc:
            counts_compared = False
            self.notes.append(f"row counts were not compared: {_reason(exc)}")
        else:
            for key in present_tables:
                if clone_counts.get(key) != source_counts.get(key):
                    self.missing.setdefault(
                        _key_text(key),
                        f"{clone_counts.get(key)} rows in the clone, {source_counts.get(key)} in the source",
                    )

        prod_references: dict[str, tuple[str, ...]] = {}
        for key, definition in sorted(clone.views.items()):
            scan = scan_prod_references(definition or "", self.source)
            if not scan.parsed:
                self.notes.append(f"{_key_text(key)}: DDL did not parse ({scan.error}); scanned with a regex")
            if scan.references:
                prod_references[_key_text(key)] = scan.references

        missing = tuple(sorted(self.missing.items()))
        return CloneResult(
            clone_database=self.clone,
            source_database=self.source,
            incident_id=incident_id,
            strategy=strategy,
            tables=tuple(_key_text(key) for key in present_tables),
            views=tuple(_key_text(key) for key in present_views),
            missing=missing,
            prod_references=prod_references,
            verified=not missing and not prod_references and counts_compared,
            row_counts={_key_text(key): count for key, count in sorted(clone_counts.items())},
            at=None if self.at is None else self.at.astimezone(timezone.utc).isoformat(),
            at_ignored_reason=self.at_ignored_reason,
            fallback_reason=self.fallback_reason,
            notes=tuple(self.notes),
            created_at=created_at.isoformat(),
        )

    def _column_differences(
        self, source: _Inventory, clone: _Inventory, keys: Sequence[ObjectKey]
    ) -> dict[ObjectKey, str]:
        """Compare each object's columns (names, order, types, nullability) through the drift diff."""
        wanted = {(schema.upper(), name.upper()): (schema, name) for schema, name in keys}

        def snapshot(inventory: _Inventory) -> SchemaSnapshot:
            rows = [
                row
                for row in inventory.columns
                if (str(row["TABLE_SCHEMA"]).upper(), str(row["TABLE_NAME"]).upper()) in wanted
            ]
            return SchemaSnapshot.from_rows(rows, captured_at=datetime.now(timezone.utc).isoformat())

        report = diff_snapshots(snapshot(source), snapshot(clone))
        differences: dict[ObjectKey, list[str]] = {}
        for event in report.events:
            schema, _, name = event.table.partition(".")
            key = wanted.get((schema, name))
            if key is not None:
                differences.setdefault(key, []).append(event.message)
        return {key: " ".join(messages) for key, messages in differences.items()}

    def _row_counts(
        self, database: str, keys: Sequence[ObjectKey], at: datetime | None
    ) -> dict[ObjectKey, int]:
        counts: dict[ObjectKey, int] = {}
        for start in range(0, len(keys), COUNT_CHUNK):
            chunk = list(keys[start : start + COUNT_CHUNK])
            for index, count in self.hook._query(self.conn, row_counts_query(database, chunk, at), None):
                counts[chunk[int(index)]] = int(count)
        return counts
