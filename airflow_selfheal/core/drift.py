"""
Schema drift: snapshots of warehouse tables, type normalisation, and the diff between two snapshots.

A snapshot is what ``information_schema.columns`` (or ``SHOW COLUMNS``) said at one moment. The diff compares the
baseline taken at the last accepted build with the current one and returns a :class:`DriftReport` of
:class:`DriftEvent` objects. Types are compared after :func:`normalize_type`, so ``INT`` against ``NUMBER(38,0)`` is
not drift, but events show each type as the warehouse spelled it.

Renames cannot be observed in ``information_schema``; they are inferred and carry a confidence in ``[0, 1]`` and the
signals that produced it:

* **Column renames** pair a removed and an added column of the same table. The normalised type must be the same;
  that earns :data:`COLUMN_TYPE_WEIGHT`. The same ordinal position earns :data:`COLUMN_POSITION_WEIGHT`, and name
  similarity (the larger of the :class:`difflib.SequenceMatcher` ratio and the Dice overlap of ``_``-separated
  tokens, so ``CUSTOMER_EMAIL`` and ``EMAIL_ADDRESS`` share ``EMAIL``) earns up to :data:`COLUMN_NAME_WEIGHT`.
  A matching type alone scores below the threshold, so a dropped column and an unrelated new one of the same
  type stay ``column_removed`` + ``column_added``.
* **Table renames** pair a removed and an added table whose column names have a Jaccard overlap of at least
  :data:`TABLE_RENAME_MIN_OVERLAP`, a shared name counting 1 when its type family (:func:`type_family`) is the
  same and half when it changed. The confidence is ``0.9 * overlap + 0.1 * name
  similarity``, less :data:`TABLE_RENAME_NOISE_PENALTY` when some shared columns differ in length or precision
  only. Column changes between the two tables are reported against the new table.

Types are paired by **family** (:func:`type_family`: ``VARCHAR(16)`` and ``TEXT`` are both ``VARCHAR``), because a
copy or a rename often loses declared lengths (Snowflake's ``CREATE TABLE ... AS`` does, and so does the embedded
stand-in on ``ALTER TABLE ... RENAME TO``); length or precision noise must not hide a rename.

A ``column_type_changed`` event that only widens a column (``VARCHAR(n)`` to ``VARCHAR(m >= n)`` or unbounded,
``NUMBER(p,s)`` to ``NUMBER(p' >= p,s)``, ``BINARY(n)`` to a longer one) is **non-breaking**
(:attr:`DriftEvent.breaking` is False): every value that fitted still fits. The report keeps it in ``events``,
but its status, headline and fingerprint count only breaking events, so notifications and triage ignore it.

Pairs are assigned greedily, best score first, so each column or table pairs at most once; pairs scoring below
:data:`RENAME_THRESHOLD` are left as a removal plus an addition.

.. code-block:: python

    baseline = SchemaSnapshot.from_dict(json.loads(stored_baseline))
    current = SchemaSnapshot.from_rows(rows, captured_at="2025-01-01T00:00:00Z", source="information_schema")
    report = diff_snapshots(baseline, current, expected_tables=["RAW.ORDERS"])
    for event in report.events:
        print(event.message)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import Enum
from functools import lru_cache
from typing import Any

SNAPSHOT_SOURCES = ("information_schema", "show_columns")
REPORT_STATUSES = ("clean", "drift_detected", "no_baseline")
# The order events take within one table; table-level facts first.
EVENT_KINDS = (
    "table_not_found",
    "table_removed",
    "table_renamed",
    "table_added",
    "column_removed",
    "column_renamed",
    "column_added",
    "column_type_changed",
    "column_nullability_changed",
)
_KIND_ORDER = {kind: index for index, kind in enumerate(EVENT_KINDS)}

RENAME_THRESHOLD = 0.5
COLUMN_TYPE_WEIGHT = 0.4
COLUMN_POSITION_WEIGHT = 0.3
COLUMN_NAME_WEIGHT = 0.3
TABLE_RENAME_MIN_OVERLAP = 0.8
# A column renamed with the same type family but a different length or precision is a little less certain.
COLUMN_TYPE_FAMILY_WEIGHT = 0.35
TABLE_RENAME_NOISE_PENALTY = 0.05

# Snowflake's maximum lengths; a column declared at the maximum is the same as one declared without a length.
SNOWFLAKE_MAX_VARCHAR = 16777216
SNOWFLAKE_MAX_BINARY = 8388608
# The default fractional-seconds precision of TIME and TIMESTAMP_*.
SNOWFLAKE_DEFAULT_TIME_PRECISION = 9

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


class DriftPolicy(str, Enum):
    """What an operator does when drift is detected: fail the task, log a warning, or only report it."""

    FAIL = "fail"
    WARN = "warn"
    REPORT = "report"


# --------------------------------------------------------------------------------------------------------------
# Type normalisation
# --------------------------------------------------------------------------------------------------------------

_INTEGER_TYPES = frozenset({"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"})
# FIXED is how SHOW COLUMNS names NUMBER.
_FIXED_TYPES = frozenset({"NUMBER", "DECIMAL", "NUMERIC", "FIXED"})
_VARCHAR_TYPES = frozenset(
    {
        "VARCHAR",
        "TEXT",
        "STRING",
        "CHAR VARYING",
        "CHARACTER VARYING",
        "NVARCHAR",
        "NVARCHAR2",
        "NCHAR VARYING",
    }
)
_CHAR_TYPES = frozenset({"CHAR", "CHARACTER", "NCHAR"})
_FLOAT_TYPES = frozenset({"FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL"})
_TIMESTAMP_TYPES = {
    "DATETIME": "TIMESTAMP_NTZ",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP_NTZ": "TIMESTAMP_NTZ",
    "TIMESTAMPNTZ": "TIMESTAMP_NTZ",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP_NTZ",
    "TIMESTAMP_TZ": "TIMESTAMP_TZ",
    "TIMESTAMPTZ": "TIMESTAMP_TZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
    "TIMESTAMP_LTZ": "TIMESTAMP_LTZ",
    "TIMESTAMPLTZ": "TIMESTAMP_LTZ",
    "TIMESTAMP WITH LOCAL TIME ZONE": "TIMESTAMP_LTZ",
    "TIME": "TIME",
}
_BOOLEAN_TYPES = frozenset({"BOOLEAN", "BOOL"})
_BINARY_TYPES = frozenset({"BINARY", "VARBINARY"})

_WHITESPACE = re.compile(r"\s+")
_SPACE_INSIDE_PARENS = re.compile(r"\s*\(\s*|\s*,\s*|\s*\)")
# A base name, optional integer arguments, and an optional suffix after them: TIMESTAMP(6) WITH TIME ZONE.
_TYPE_SHAPE = re.compile(
    r"^(?P<base>[A-Z][A-Z0-9_ ]*?)(?:\((?P<args>[0-9,]*)\)(?: (?P<suffix>[A-Z][A-Z_ ]*))?)?$",
)


def _clean_type_text(data_type: str) -> str:
    text = _WHITESPACE.sub(" ", data_type.strip().upper())
    return _SPACE_INSIDE_PARENS.sub(lambda match: match.group(0).strip(), text)


@lru_cache(maxsize=4096)
def normalize_type(data_type: str) -> str:
    """
    Give a type its canonical Snowflake spelling, so that types differing only in spelling compare equal.

    ``INT``, ``BIGINT``, ``NUMBER`` and ``DECIMAL(38,0)`` become ``NUMBER(38,0)``; ``TEXT``, ``STRING`` and
    ``VARCHAR(16777216)`` become ``VARCHAR``; ``DOUBLE`` and ``REAL`` become ``FLOAT``; ``DATETIME`` and
    ``TIMESTAMP(9)`` become ``TIMESTAMP_NTZ``. Unknown types pass through upper-cased, with whitespace collapsed.

    :param data_type: the type as a warehouse reported it, e.g. ``number(10, 2)`` or ``TIMESTAMP WITH TIME ZONE``.
    :return: the canonical spelling, e.g. ``NUMBER(10,2)`` or ``TIMESTAMP_TZ``.
    """
    text = _clean_type_text(data_type)
    shape = _TYPE_SHAPE.match(text)
    if shape is None:
        return text
    base = shape.group("base").strip()
    if shape.group("suffix"):
        base = f"{base} {shape.group('suffix').strip()}"
    raw_args = shape.group("args")
    if raw_args is None:
        args: list[int] = []
    elif raw_args and all(part.isdigit() for part in raw_args.split(",")):
        args = [int(part) for part in raw_args.split(",")]
    else:
        return text

    if base in _INTEGER_TYPES:
        return "NUMBER(38,0)"
    if base in _FIXED_TYPES:
        if len(args) > 2:
            return text
        precision = args[0] if args else 38
        scale = args[1] if len(args) == 2 else 0
        return f"NUMBER({precision},{scale})"
    if base in _VARCHAR_TYPES or base in _CHAR_TYPES:
        if len(args) > 1:
            return text
        length = args[0] if args else (SNOWFLAKE_MAX_VARCHAR if base in _VARCHAR_TYPES else 1)
        return "VARCHAR" if length == SNOWFLAKE_MAX_VARCHAR else f"VARCHAR({length})"
    if base in _FLOAT_TYPES:
        return "FLOAT"
    if base in _TIMESTAMP_TYPES:
        name = _TIMESTAMP_TYPES[base]
        if len(args) > 1:
            return text
        if not args or args[0] == SNOWFLAKE_DEFAULT_TIME_PRECISION:
            return name
        return f"{name}({args[0]})"
    if base in _BOOLEAN_TYPES:
        return "BOOLEAN"
    if base in _BINARY_TYPES:
        if len(args) > 1:
            return text
        if not args or args[0] == SNOWFLAKE_MAX_BINARY:
            return "BINARY"
        return f"BINARY({args[0]})"
    return text


_TYPE_ARGS = re.compile(r"^(?P<base>[A-Z_][A-Z0-9_ ]*?)(?:\((?P<args>[0-9,]+)\))?$")


def _type_parts(data_type: str) -> tuple[str, tuple[int, ...]]:
    """A normalised type split into its name and integer arguments: ``NUMBER(10,2)`` to ``("NUMBER", (10, 2))``."""
    normalized = normalize_type(data_type)
    shape = _TYPE_ARGS.match(normalized)
    if shape is None:
        return normalized, ()
    args = tuple(int(part) for part in (shape.group("args") or "").split(",") if part)
    return shape.group("base").strip(), args


def type_family(data_type: str) -> str:
    """
    The type without length, precision or scale: what a rename keeps even when a copy loses declared lengths.

    ``VARCHAR(16)``, ``TEXT`` and ``CHAR(3)`` are ``VARCHAR``; ``NUMBER(10,2)`` and ``INT`` are ``NUMBER``;
    ``TIMESTAMP_NTZ(3)`` is ``TIMESTAMP_NTZ``.

    :param data_type: the type as a warehouse reported it.
    :return: the family name.
    """
    return _type_parts(data_type)[0]


def is_widening(old_type: str, new_type: str) -> bool:
    """
    Whether a type change only widens the column, so every value the old type held still fits unchanged.

    True for ``VARCHAR(n)`` to ``VARCHAR(m)`` with ``m >= n`` or to unbounded ``VARCHAR``, ``NUMBER(p,s)`` to
    ``NUMBER(p',s)`` with ``p' >= p``, and ``BINARY(n)`` to a longer or unbounded ``BINARY``. A change of family,
    of scale, or a narrowing is not.

    :param old_type: the baseline type.
    :param new_type: the current type.
    :return: True when the change cannot break a reader.
    """
    old_base, old_args = _type_parts(old_type)
    new_base, new_args = _type_parts(new_type)
    if old_base != new_base:
        return False
    if old_base in ("VARCHAR", "BINARY"):
        maximum = SNOWFLAKE_MAX_VARCHAR if old_base == "VARCHAR" else SNOWFLAKE_MAX_BINARY
        old_length = old_args[0] if old_args else maximum
        new_length = new_args[0] if new_args else maximum
        return new_length >= old_length
    if old_base == "NUMBER" and len(old_args) == 2 and len(new_args) == 2:
        return new_args[1] == old_args[1] and new_args[0] >= old_args[0]
    return normalize_type(old_type) == normalize_type(new_type)


# --------------------------------------------------------------------------------------------------------------
# Snapshot model
# --------------------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------------------
# Events and report
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftEvent:
    """
    One schema change between the baseline and the current snapshot.

    .. code-block:: python

        event = DriftEvent(kind="column_removed", table="RAW.ORDERS", column="CUSTOMER_EMAIL")
        assert event.message == "raw.orders lost column CUSTOMER_EMAIL."

    :param kind: one of :data:`EVENT_KINDS`.
    :param table: the table key, ``SCHEMA.TABLE`` upper-case (for ``table_renamed``, the old key).
    :param column: the column, or None for table-level events (for ``column_renamed``, the old name).
    :param new_column: the new name of a renamed column.
    :param old_type: the baseline type, in the warehouse's spelling.
    :param new_type: the current type, in the warehouse's spelling.
    :param old_nullable: the baseline nullability.
    :param new_nullable: the current nullability.
    :param new_table: the new key of a renamed table.
    :param confidence: how sure an inferred rename is, in ``[0, 1]``.
    :param reason: the signals behind an inferred rename, e.g. ``same type VARCHAR; same position 3``.
    """

    kind: str
    table: str
    column: str | None = None
    new_column: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    old_nullable: bool | None = None
    new_nullable: bool | None = None
    new_table: str | None = None
    confidence: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KIND_ORDER:
            raise ValueError(f"kind must be one of {EVENT_KINDS}, got {self.kind!r}")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence!r}")

    @property
    def message(self) -> str:
        """One human sentence, e.g. ``raw.orders.AMOUNT changed type from NUMBER(10,2) to VARCHAR.``."""
        table = self.table.lower()
        column = f"{table}.{self.column}"
        inferred = f"confidence {self.confidence or 0.0:.2f}: {self.reason or 'no signals'}"
        if self.kind == "table_not_found":
            return f"{table} is declared as a source but was not found."
        if self.kind == "table_removed":
            return f"{table} was removed."
        if self.kind == "table_added":
            return f"{table} was added."
        if self.kind == "table_renamed":
            return f"{table} was renamed to {(self.new_table or '').lower()} ({inferred})."
        if self.kind == "column_removed":
            return f"{table} lost column {self.column}."
        if self.kind == "column_added":
            return f"{table} gained column {self.column} ({self.new_type})."
        if self.kind == "column_renamed":
            return f"{column} was renamed to {self.new_column} ({inferred})."
        if self.kind == "column_type_changed":
            widened = "" if self.breaking else " (non-breaking: widened)"
            return f"{column} changed type from {self.old_type} to {self.new_type}{widened}."
        return f"{column} became {'nullable' if self.new_nullable else 'NOT NULL'}."

    @property
    def breaking(self) -> bool:
        """
        Whether the change can break a reader; False only for a type change that widens (:func:`is_widening`).

        Derived from the types, so records written before this flag existed read the same.
        """
        if self.kind != "column_type_changed" or not self.old_type or not self.new_type:
            return True
        return not is_widening(self.old_type, self.new_type)

    @property
    def identity(self) -> tuple[str, ...]:
        """The change itself, without message, confidence or reason; types normalised. Feeds the fingerprint."""
        return (
            self.kind,
            self.table,
            self.column or "",
            self.new_column or "",
            normalize_type(self.old_type) if self.old_type else "",
            normalize_type(self.new_type) if self.new_type else "",
            "" if self.old_nullable is None else str(self.old_nullable).lower(),
            "" if self.new_nullable is None else str(self.new_nullable).lower(),
            self.new_table or "",
        )

    def sort_key(self) -> tuple[str, int, str, str, str]:
        """
        Order events by table, then kind (:data:`EVENT_KINDS` order), then column.

        :return: the key.
        """
        return (
            self.table,
            _KIND_ORDER[self.kind],
            self.column or "",
            self.new_column or "",
            self.new_table or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, including the human ``message`` and the derived ``breaking``.

        :return: every field plus ``breaking`` and ``message``.
        """
        return {
            "kind": self.kind,
            "table": self.table,
            "column": self.column,
            "new_column": self.new_column,
            "old_type": self.old_type,
            "new_type": self.new_type,
            "old_nullable": self.old_nullable,
            "new_nullable": self.new_nullable,
            "new_table": self.new_table,
            "confidence": self.confidence,
            "reason": self.reason,
            "breaking": self.breaking,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftEvent:
        """
        Rebuild an event from :meth:`to_dict` output; ``message`` and ``breaking`` are derived, so not read.

        :param data: the dict.
        :return: the event.
        """
        confidence = data.get("confidence")
        return cls(
            kind=str(data["kind"]),
            table=str(data["table"]),
            column=data.get("column"),
            new_column=data.get("new_column"),
            old_type=data.get("old_type"),
            new_type=data.get("new_type"),
            old_nullable=data.get("old_nullable"),
            new_nullable=data.get("new_nullable"),
            new_table=data.get("new_table"),
            confidence=None if confidence is None else float(confidence),
            reason=data.get("reason"),
        )


@dataclass(frozen=True)
class DriftReport:
    """
    The result of :func:`diff_snapshots`.

    .. code-block:: python

        report = diff_snapshots(baseline, current)
        if report.status == "drift_detected":
            log.warning("%s [%s]", report.headline, report.fingerprint)

    :param status: ``clean``, ``drift_detected`` or ``no_baseline``.
    :param events: the events, in :meth:`DriftEvent.sort_key` order.
    :param baseline_hash: the baseline's :attr:`SchemaSnapshot.content_hash`, or None without a baseline.
    :param current_hash: the current snapshot's :attr:`SchemaSnapshot.content_hash`.
    """

    status: str
    events: tuple[DriftEvent, ...]
    baseline_hash: str | None
    current_hash: str

    def __post_init__(self) -> None:
        if self.status not in REPORT_STATUSES:
            raise ValueError(f"status must be one of {REPORT_STATUSES}, got {self.status!r}")

    @property
    def breaking_events(self) -> tuple[DriftEvent, ...]:
        """The events that can break a reader: what the headline, fingerprint, notifications and triage use."""
        return tuple(event for event in self.events if event.breaking)

    @property
    def non_breaking_events(self) -> tuple[DriftEvent, ...]:
        """The widening type changes, listed apart; they neither page nor explain a failure."""
        return tuple(event for event in self.events if not event.breaking)

    @property
    def fingerprint(self) -> str:
        """
        The first 16 hex digits of a sha256 over the sorted set of the breaking events' identities, else ``""``.

        Messages, confidences and reasons are left out, so the same set of changes gives the same fingerprint;
        non-breaking events are left out too, so widening noise never re-notifies.
        """
        events = self.breaking_events
        if not events:
            return ""
        identities = sorted({event.identity for event in events})
        canonical = json.dumps(identities, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def headline(self) -> str:
        """``clean``, ``drift detected (3 changes)`` or ``no baseline``; non-breaking events are not counted."""
        if self.status == "no_baseline":
            return "no baseline"
        if self.status == "clean":
            return "clean"
        count = len(self.breaking_events) or len(self.events)
        return f"drift detected ({count} change{'' if count == 1 else 's'})"

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: ``status``, ``headline``, ``fingerprint``, ``baseline_hash``, ``current_hash``, ``events`` and
            ``non_breaking_changes`` (how many of the events are non-breaking).
        """
        return {
            "status": self.status,
            "headline": self.headline,
            "fingerprint": self.fingerprint,
            "baseline_hash": self.baseline_hash,
            "current_hash": self.current_hash,
            "events": [event.to_dict() for event in self.events],
            "non_breaking_changes": len(self.non_breaking_events),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """
        Rebuild a report from :meth:`to_dict` output; ``headline``, ``fingerprint`` and the counts are derived.

        :param data: the dict.
        :return: the report.
        """
        return cls(
            status=str(data["status"]),
            events=tuple(DriftEvent.from_dict(event) for event in data["events"]),
            baseline_hash=data.get("baseline_hash"),
            current_hash=str(data["current_hash"]),
        )


# --------------------------------------------------------------------------------------------------------------
# Diff
# --------------------------------------------------------------------------------------------------------------

_NAME_TOKEN = re.compile(r"[^A-Z0-9]+")


def _name_similarity(old_name: str, new_name: str) -> float:
    """The larger of the difflib ratio and the Dice overlap of name tokens, in ``[0, 1]``."""
    old_upper, new_upper = old_name.upper(), new_name.upper()
    ratio = SequenceMatcher(None, old_upper, new_upper).ratio()
    old_tokens = {token for token in _NAME_TOKEN.split(old_upper) if token}
    new_tokens = {token for token in _NAME_TOKEN.split(new_upper) if token}
    dice = 0.0
    if old_tokens and new_tokens:
        dice = 2 * len(old_tokens & new_tokens) / (len(old_tokens) + len(new_tokens))
    return max(ratio, dice)


def _score_column_rename(removed: ColumnSchema, added: ColumnSchema) -> tuple[float, str] | None:
    """Score a (removed, added) pair as a rename; None unless the types are of the same family."""
    removed_type, added_type = normalize_type(removed.data_type), normalize_type(added.data_type)
    if removed_type == added_type:
        score = COLUMN_TYPE_WEIGHT
        signals = [f"same type {removed_type}"]
    elif type_family(removed_type) == type_family(added_type):
        score = COLUMN_TYPE_FAMILY_WEIGHT
        signals = [f"same type family {type_family(removed_type)} ({removed_type} -> {added_type})"]
    else:
        return None
    if removed.position == added.position:
        score += COLUMN_POSITION_WEIGHT
        signals.append(f"same position {removed.position}")
    similarity = _name_similarity(removed.name, added.name)
    if similarity > 0:
        score += COLUMN_NAME_WEIGHT * similarity
        signals.append(f"name similarity {similarity:.2f}")
    return min(1.0, round(score, 2)), "; ".join(signals)


def _greedy_pairs(
    candidates: list[tuple[float, str, str, str]],
) -> list[tuple[float, str, str, str]]:
    """Take ``(score, old, new, reason)`` candidates best first, each old and new at most once."""
    chosen = []
    used_old: set[str] = set()
    used_new: set[str] = set()
    for candidate in sorted(candidates, key=lambda item: (-item[0], item[1], item[2])):
        score, old, new, _ = candidate
        if score < RENAME_THRESHOLD or old in used_old or new in used_new:
            continue
        chosen.append(candidate)
        used_old.add(old)
        used_new.add(new)
    return chosen


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


def _column_families(table: TableSchema) -> dict[str, str]:
    """Column name to type family: a copy that loses declared lengths keeps it."""
    return {column.name: type_family(column.data_type) for column in table.columns}


def _length_noise(old_table: TableSchema, new_table: TableSchema) -> list[str]:
    """Shared columns of one family whose exact types differ, e.g. ``NAME VARCHAR(16) -> VARCHAR``."""
    new_types = {column.name: normalize_type(column.data_type) for column in new_table.columns}
    noise = []
    for column in sorted(old_table.columns, key=lambda col: col.position):
        old_type, new_type = normalize_type(column.data_type), new_types.get(column.name)
        if new_type is not None and new_type != old_type and type_family(new_type) == type_family(old_type):
            noise.append(f"{column.name} {old_type} -> {new_type}")
    return noise


def _table_rename_candidates(
    removed: list[TableSchema], added: list[TableSchema]
) -> list[tuple[float, str, str, str]]:
    """
    Score removed/added table pairs whose columns overlap enough; an inverted index on names keeps this sparse.

    The overlap is the Jaccard index of the column names, where a shared name of the same type family counts
    1 and one whose family changed (a real type change in the same move) counts half.
    """
    added_families = {table.key: _column_families(table) for table in added}
    added_tables = {table.key: table for table in added}
    tables_by_column: dict[str, list[str]] = {}
    for key, families in added_families.items():
        for name in families:
            tables_by_column.setdefault(name, []).append(key)
    candidates = []
    for old_table in removed:
        old_families = _column_families(old_table)
        shared = Counter(key for name in old_families for key in tables_by_column.get(name, ()))
        for new_key in shared:
            new_families = added_families[new_key]
            union = len(old_families.keys() | new_families.keys())
            same = [name for name in old_families if new_families.get(name) == old_families[name]]
            by_name = [
                name
                for name in old_families
                if name in new_families and new_families[name] != old_families[name]
            ]
            overlap = (len(same) + 0.5 * len(by_name)) / union
            if overlap < TABLE_RENAME_MIN_OVERLAP:
                continue
            old_name = old_table.key.split(".", 1)[1]
            new_name = new_key.split(".", 1)[1]
            similarity = _name_similarity(old_name, new_name)
            noise = _length_noise(old_table, added_tables[new_key])
            score = 0.9 * overlap + 0.1 * similarity - (TABLE_RENAME_NOISE_PENALTY if noise else 0.0)
            confidence = max(0.0, min(1.0, round(score, 2)))
            matched_by = "name and type family" if noise else "name and type"
            reason = f"same columns {len(same)}/{union} by {matched_by}"
            if by_name:
                reason += f", {len(by_name)} more by name only ({', '.join(sorted(by_name)[:3])})"
            reason += f"; name similarity {similarity:.2f}"
            if noise:
                reason += f"; length or precision differs for {len(noise)} ({', '.join(noise[:3])})"
            candidates.append((confidence, old_table.key, new_key, reason))
    return candidates


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
    Renames are inferred as described in this module's docstring.

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
