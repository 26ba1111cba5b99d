"""The schema model: a snapshot of tables and their columns, as ``information_schema.columns`` reported them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_selfheal.core.drift.data_types import (
    _BINARY_TYPES,
    _CHAR_TYPES,
    _FIXED_TYPES,
    _VARCHAR_TYPES,
    SNOWFLAKE_MAX_BINARY,
    SNOWFLAKE_MAX_VARCHAR,
    _clean_type_text,
)

SNAPSHOT_SOURCES = ("information_schema", "show_columns")

INFORMATION_SCHEMA_COLUMNS = (
    "TABLE_CATALOG",
    "TABLE_SCHEMA",
    "TABLE_NAME",
    "COLUMN_NAME",
    "DATA_TYPE",
    "IS_NULLABLE",
    "ORDINAL_POSITION",
    "NUMERIC_PRECISION",
    "NUMERIC_SCALE",
    "CHARACTER_MAXIMUM_LENGTH",
)
_OPTIONAL_COLUMNS = frozenset({"NUMERIC_PRECISION", "NUMERIC_SCALE", "CHARACTER_MAXIMUM_LENGTH"})


@dataclass(frozen=True)
class ColumnSchema:
    """
    One column of a table.

    :param name: the column name, upper-case.
    :param data_type: the type as the warehouse reported it, e.g. ``NUMBER(10,2)`` or ``TEXT``.
    :param nullable: whether the column accepts NULL.
    :param position: the 1-based ordinal position.
    """

    name: str
    data_type: str
    nullable: bool
    position: int

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict.

        :return: ``name``, ``data_type``, ``nullable`` and ``position``.
        """
        return {
            "name": self.name,
            "data_type": self.data_type,
            "nullable": self.nullable,
            "position": self.position,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSchema:
        """
        Rebuild a column from :meth:`to_dict` output.

        :param data: the dict.
        :return: the column.
        """
        return cls(
            name=str(data["name"]),
            data_type=str(data["data_type"]),
            nullable=bool(data["nullable"]),
            position=int(data["position"]),
        )


@dataclass(frozen=True)
class TableSchema:
    """
    One table and its columns.

    .. code-block:: python

        table = TableSchema("PROD", "RAW", "ORDERS", (ColumnSchema("ID", "NUMBER(38,0)", False, 1),))
        assert table.key == "RAW.ORDERS"

    :param database: the database (catalog) name.
    :param schema: the schema name.
    :param name: the table name.
    :param columns: the columns, in any order.
    """

    database: str
    schema: str
    name: str
    columns: tuple[ColumnSchema, ...]

    @property
    def key(self) -> str:
        """``SCHEMA.NAME``, upper-case: how a table is matched across databases (prod and its clone)."""
        return f"{self.schema}.{self.name}".upper()

    @property
    def fqn(self) -> str:
        """``DATABASE.SCHEMA.NAME``, upper-case."""
        return f"{self.database}.{self.schema}.{self.name}".upper()

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict with columns in ordinal order.

        :return: ``database``, ``schema``, ``name`` and ``columns``.
        """
        return {
            "database": self.database,
            "schema": self.schema,
            "name": self.name,
            "columns": [
                column.to_dict() for column in sorted(self.columns, key=lambda col: (col.position, col.name))
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSchema:
        """
        Rebuild a table from :meth:`to_dict` output.

        :param data: the dict.
        :return: the table.
        """
        return cls(
            database=str(data["database"]),
            schema=str(data["schema"]),
            name=str(data["name"]),
            columns=tuple(ColumnSchema.from_dict(column) for column in data["columns"]),
        )


def _row_value(row: Mapping[str, Any] | Sequence[Any], column: str) -> Any:
    if isinstance(row, Mapping):
        if column in row:
            return row[column]
        lowered = column.lower()
        if lowered in row:
            return row[lowered]
        for key, value in row.items():
            if str(key).upper() == column:
                return value
        if column in _OPTIONAL_COLUMNS:
            return None
        raise ValueError(f"information_schema row is missing {column}: {dict(row)!r}")
    index = INFORMATION_SCHEMA_COLUMNS.index(column)
    if index < len(row):
        return row[index]
    if column in _OPTIONAL_COLUMNS:
        return None
    raise ValueError(f"information_schema row has no value for {column} (position {index}): {list(row)!r}")


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _nullable_flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().upper() in ("YES", "Y", "TRUE", "1")


def _compose_type(data_type: str, precision: int | None, scale: int | None, length: int | None) -> str:
    """Add precision or length to a bare type name, keeping the warehouse's own spelling of the name."""
    data_type = data_type.strip()
    if "(" in data_type:
        return data_type
    base = _clean_type_text(data_type)
    if base in _FIXED_TYPES and precision is not None:
        return f"{data_type}({precision},{scale or 0})"
    if (base in _VARCHAR_TYPES or base in _CHAR_TYPES) and length is not None:
        return data_type if length == SNOWFLAKE_MAX_VARCHAR else f"{data_type}({length})"
    if base in _BINARY_TYPES and length is not None:
        return data_type if length == SNOWFLAKE_MAX_BINARY else f"{data_type}({length})"
    return data_type


@dataclass(frozen=True)
class SchemaSnapshot:
    """
    The schemas of a set of tables at one moment.

    .. code-block:: python

        snapshot = SchemaSnapshot.from_rows(cursor.fetchall(), captured_at="2025-01-01T00:00:00Z")
        storage.write_text(json.dumps(snapshot.to_dict()))

    :param tables: the tables, in any order.
    :param captured_at: when the snapshot was taken, ISO-8601 UTC.
    :param source: where the metadata came from: ``information_schema`` or ``show_columns``.
    """

    tables: tuple[TableSchema, ...]
    captured_at: str
    source: str

    def __post_init__(self) -> None:
        if self.source not in SNAPSHOT_SOURCES:
            raise ValueError(f"source must be one of {SNAPSHOT_SOURCES}, got {self.source!r}")

    def _tables_as_dicts(self) -> list[dict[str, Any]]:
        ordered = sorted(self.tables, key=lambda table: (table.fqn, table.database, table.schema, table.name))
        return [table.to_dict() for table in ordered]

    @property
    def content_hash(self) -> str:
        """The sha256 of the canonical JSON of the tables only, so equal schemas hash equally whenever taken."""
        canonical = json.dumps(self._tables_as_dicts(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict with tables and columns in a stable order.

        :return: ``captured_at``, ``source``, ``content_hash`` and ``tables``.
        """
        return {
            "captured_at": self.captured_at,
            "source": self.source,
            "content_hash": self.content_hash,
            "tables": self._tables_as_dicts(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemaSnapshot:
        """
        Rebuild a snapshot from :meth:`to_dict` output; ``content_hash`` is recomputed, not read.

        :param data: the dict.
        :return: the snapshot.
        """
        return cls(
            tables=tuple(TableSchema.from_dict(table) for table in data["tables"]),
            captured_at=str(data["captured_at"]),
            source=str(data["source"]),
        )

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any] | Sequence[Any]],
        *,
        captured_at: str,
        source: str = "information_schema",
    ) -> SchemaSnapshot:
        """
        Build a snapshot from ``information_schema.columns`` rows.

        Mappings are read by key, case-insensitively; sequences by position in
        :data:`INFORMATION_SCHEMA_COLUMNS`. ``NUMERIC_PRECISION``, ``NUMERIC_SCALE`` and
        ``CHARACTER_MAXIMUM_LENGTH`` may be missing or None. A bare ``NUMBER`` with precision 10 and scale 2 becomes
        ``NUMBER(10,2)``, a ``VARCHAR`` with length 255 becomes ``VARCHAR(255)``. Names are upper-cased.

        :param rows: the rows, in any order.
        :param captured_at: when the rows were read, ISO-8601 UTC.
        :param source: ``information_schema`` or ``show_columns``.
        :return: the snapshot, tables sorted by fully-qualified name and columns by position.
        """
        grouped: dict[tuple[str, str, str], list[ColumnSchema]] = {}
        for row in rows:
            table_id = (
                str(_row_value(row, "TABLE_CATALOG")).upper(),
                str(_row_value(row, "TABLE_SCHEMA")).upper(),
                str(_row_value(row, "TABLE_NAME")).upper(),
            )
            data_type = _compose_type(
                str(_row_value(row, "DATA_TYPE")),
                precision=_optional_int(_row_value(row, "NUMERIC_PRECISION")),
                scale=_optional_int(_row_value(row, "NUMERIC_SCALE")),
                length=_optional_int(_row_value(row, "CHARACTER_MAXIMUM_LENGTH")),
            )
            grouped.setdefault(table_id, []).append(
                ColumnSchema(
                    name=str(_row_value(row, "COLUMN_NAME")).upper(),
                    data_type=data_type,
                    nullable=_nullable_flag(_row_value(row, "IS_NULLABLE")),
                    position=int(_row_value(row, "ORDINAL_POSITION")),
                )
            )
        tables = tuple(
            TableSchema(
                database=database,
                schema=schema,
                name=name,
                columns=tuple(sorted(columns, key=lambda col: (col.position, col.name))),
            )
            for (database, schema, name), columns in sorted(grouped.items())
        )
        return cls(tables=tables, captured_at=captured_at, source=source)
