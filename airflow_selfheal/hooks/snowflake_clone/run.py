"""
One clone attempt from start to end: clone, fill in what the clone left out, re-create views, verify.

The clone statement comes first (database, schemas or tables); what it left out is cloned table by table, missing
views are re-created, and the result is verified. Time travel (``AT``) is used while the warehouse accepts it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from airflow_selfheal.core.clone_sql import (
    at_clause,
    clone_database,
    clone_schema,
    clone_table,
    create_database,
    create_schema,
)
from airflow_selfheal.hooks.snowflake_clone.state import ObjectKey, _Inventory, _key_text, _reason
from airflow_selfheal.hooks.snowflake_clone.verification import _Verification
from airflow_selfheal.hooks.snowflake_clone.views import _ViewSteps

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from airflow_selfheal.hooks.snowflake_clone.results import CloneResult


_TABLE_TYPES = frozenset({"BASE TABLE"})
_VIEW_TYPES = frozenset({"VIEW", "MATERIALIZED VIEW"})
_NOT_CLONED = {
    "EXTERNAL TABLE": "Snowflake never clones external tables",
    "TEMPORARY TABLE": "temporary tables belong to one session and are never cloned",
}


class _CloneRun(_ViewSteps, _Verification):
    """One clone attempt: clone, fill in what the clone left out, re-create views, verify."""

    def execute(
        self,
        incident_id: str,
        schemas: list[str] | None,
        tables: list[ObjectKey] | None,
        created_at: datetime,
    ) -> CloneResult:
        scope = schemas
        if tables is not None:
            scope = sorted({schema for schema, _ in tables})
        source = self.inventory(self.source, scope)
        self.source_views = set(source.views)
        expected_tables, expected_views = self._expected(source, tables)

        strategy = "tables"
        if schemas is None and tables is None:
            done, error = self._clone_with_at(
                lambda at: clone_database(self.clone, self.source, at), "the database"
            )
            if done:
                self.created = True
                strategy = "database"
            else:
                self.fallback_reason = f"CREATE DATABASE … CLONE failed: {error}"
                # No IF NOT EXISTS: a database of that name that this run did not make is never reused.
                self._create(create_database(self.clone))
        else:
            self._create(create_database(self.clone))
            for schema in schemas or ():
                done, error = self._clone_with_at(
                    partial(clone_schema, (self.clone, schema), (self.source, schema)),
                    f"schema {schema}",
                )
                if not done:
                    self._note_fallback(f"CREATE SCHEMA … CLONE failed for {schema}: {error}")

        cloned = self.inventory(self.clone, scope)
        if strategy == "database" or schemas:
            self.at_applied.update(
                key for key in cloned.tables if self.at is not None and not self.at_rejected
            )
        absent = [key for key in expected_tables if key not in cloned.tables]
        if absent:
            if strategy == "database" or schemas:
                kind = "CREATE DATABASE … CLONE" if strategy == "database" else "CREATE SCHEMA … CLONE"
                self._note_fallback(
                    f"{kind} left {len(absent)} of {len(expected_tables)} tables out of the clone; "
                    "cloned them table by table"
                )
            strategy = "tables"
            self._clone_tables(absent)

        absent_views = {key: source.views[key] for key in expected_views if key not in cloned.views}
        self._recreate_views(absent_views)
        for view, outcome in self.repoint_views(cloned.views).items():
            if outcome != "repointed":
                self.notes.append(f"{view} still reads {self.source}: {outcome}")

        final = self.inventory(self.clone, scope)
        return self._verify(incident_id, strategy, created_at, source, final, expected_tables, expected_views)

    def _expected(
        self, source: _Inventory, tables: list[ObjectKey] | None
    ) -> tuple[list[ObjectKey], list[ObjectKey]]:
        """The source's tables to clone and views to reproduce; record what will not be cloned and why."""
        if tables is None:
            wanted_tables = dict(source.tables)
            wanted_views = list(source.views)
        else:
            wanted_tables = {key: source.tables[key] for key in tables if key in source.tables}
            wanted_views = [key for key in tables if key in source.views and key not in wanted_tables]
            for key in tables:
                if key not in source.tables and key not in source.views:
                    self.missing[_key_text(key)] = f"not found in {self.source} (or not visible to this role)"
        expected_tables = []
        for key, table_type in sorted(wanted_tables.items()):
            if table_type in _TABLE_TYPES:
                expected_tables.append(key)
            elif table_type in _VIEW_TYPES:
                if key not in source.views:
                    self.missing[_key_text(key)] = f"{table_type.lower()} without a visible definition"
            elif table_type == "TEMPORARY TABLE":
                self.notes.append(f"{_key_text(key)}: {_NOT_CLONED[table_type]}")
            else:
                self.missing[_key_text(key)] = _NOT_CLONED.get(
                    table_type, f"{table_type} objects are not cloned"
                )
        return expected_tables, sorted(wanted_views)

    def _clone_tables(self, keys: Sequence[ObjectKey]) -> None:
        for schema in sorted({schema for schema, _ in keys}):
            self._create(create_schema((self.clone, schema)))
        for key in keys:
            schema, table = key
            done, error = self._clone_with_at(
                partial(clone_table, (self.clone, schema, table), (self.source, schema, table)),
                f"table {schema}.{table}",
            )
            if done and self.at is not None and not self.at_rejected:
                self.at_applied.add(key)
            if not done:
                self.missing[_key_text(key)] = f"CREATE TABLE … CLONE failed: {error}"

    def _clone_with_at(self, build: Callable[[datetime | None], str], what: str) -> tuple[bool, str | None]:
        """
        Run a CLONE statement, with ``AT`` while the warehouse accepts it.

        :return: whether the clone was made, and the error if not.
        """
        from snowflake.connector.errors import ProgrammingError

        if self.at is not None and not self.at_rejected:
            try:
                self._create(build(self.at))
                return True, None
            except ProgrammingError as exc:
                at_error = _reason(exc)
            try:
                self._create(build(None))
            except ProgrammingError as exc:
                return False, _reason(exc)
            self.at_rejected = True
            self.at_ignored_reason = (
                f"the warehouse rejected {at_clause(self.at)} when cloning {what} ({at_error}); "
                "the clone holds the current state instead"
            )
            self.hook.log.warning("%s", self.at_ignored_reason)
            return True, None
        try:
            self._create(build(None))
        except ProgrammingError as exc:
            return False, _reason(exc)
        return True, None
