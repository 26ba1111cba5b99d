"""
The state of one clone attempt, shared by its steps: what was created, what is missing, what time travel did.

:class:`_CloneState` holds it; the steps live in :mod:`.views` (view re-creation), :mod:`.verification` (the
comparison with the source) and :mod:`.run` (the attempt itself), each a subclass of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airflow_selfheal.core.clone_sql import tables_query, views_query
from airflow_selfheal.hooks.snowflake import columns_query

if TYPE_CHECKING:
    import logging
    from collections.abc import Sequence
    from datetime import datetime


ObjectKey = tuple[str, str]


class _Warehouse(Protocol):
    """What an attempt's steps use of :class:`~airflow_selfheal.hooks.snowflake_clone.hook.SnowflakeCloneHook`."""

    @property
    def log(self) -> logging.Logger:
        """The hook's logger."""

    def _query(
        self, conn: Any, sql: str, parameters: Sequence[Any] | None, *, as_dict: bool = False
    ) -> list[Any]:
        """Run one read-only metadata query."""

    def _execute(self, conn: Any, sql: str) -> None:
        """Run one DDL statement and log it."""


def _key_text(key: ObjectKey) -> str:
    return f"{key[0]}.{key[1]}"


def _reason(exc: BaseException) -> str:
    """The first line of an error, bounded, for a result that travels through XCom."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


@dataclass
class _Inventory:
    """One database's objects as its information_schema reports them."""

    tables: dict[ObjectKey, str] = field(default_factory=dict)
    views: dict[ObjectKey, str | None] = field(default_factory=dict)
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def schemas(self) -> list[str]:
        return sorted({schema for schema, _ in self.tables} | {schema for schema, _ in self.views})


class _CloneState:
    """One clone attempt's state (time travel honoured or not, what is missing) and the steps every part uses."""

    def __init__(self, hook: _Warehouse, conn: Any, *, source: str, clone: str, at: datetime | None):
        self.hook = hook
        self.conn = conn
        self.source = source
        self.clone = clone
        self.at = at
        self.created = False
        self.at_rejected = False
        self.at_ignored_reason: str | None = None
        self.fallback_reason: str | None = None
        self.missing: dict[str, str] = {}
        self.notes: list[str] = []
        #: tables whose clone honoured ``at``; their source rows are counted at that moment too.
        self.at_applied: set[ObjectKey] = set()
        #: the source's views, which a re-created view is compared with.
        self.source_views: set[ObjectKey] = set()
        #: views this run created in the clone (a refused reading is dropped again).
        self.created_views: set[ObjectKey] = set()

    # -- steps ---------------------------------------------------------------------------------------------------

    def inventory(self, database: str, schemas: Sequence[str] | None) -> _Inventory:
        """Tables, views and columns of ``database`` in three metadata queries, whatever the object count."""
        parameters = tuple(schemas) if schemas is not None else None
        count = None if schemas is None else len(schemas)
        inventory = _Inventory()
        if schemas is not None and not schemas:
            return inventory
        for schema, name, table_type in self.hook._query(
            self.conn, tables_query(database, count), parameters
        ):
            inventory.tables[(str(schema), str(name))] = str(table_type).upper()
        for schema, name, definition in self.hook._query(self.conn, views_query(database, count), parameters):
            key = (str(schema), str(name))
            inventory.views[key] = None if definition is None else str(definition)
            inventory.tables.pop(key, None)
        if inventory.schemas:
            rows = self.hook._query(
                self.conn,
                columns_query(database, len(inventory.schemas)),
                tuple(inventory.schemas),
                as_dict=True,
            )
            inventory.columns = [dict(row) for row in rows]
        return inventory

    def _create(self, sql: str) -> None:
        self.hook._execute(self.conn, sql)
        self.created = True

    def _note_fallback(self, reason: str) -> None:
        self.fallback_reason = reason if self.fallback_reason is None else f"{self.fallback_reason}; {reason}"
