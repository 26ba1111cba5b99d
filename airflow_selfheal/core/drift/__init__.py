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

The modules, each importable on its own; everything callers use is re-exported here:

* :mod:`~airflow_selfheal.core.drift.data_types`: :func:`normalize_type`, :func:`type_family`, :func:`is_widening`;
* :mod:`~airflow_selfheal.core.drift.snapshot`: :class:`SchemaSnapshot`, :class:`TableSchema`,
  :class:`ColumnSchema`, read from ``information_schema`` rows;
* :mod:`~airflow_selfheal.core.drift.events`: :class:`DriftEvent` and its :data:`EVENT_KINDS`;
* :mod:`~airflow_selfheal.core.drift.report`: :class:`DriftReport` and :class:`DriftPolicy`;
* :mod:`~airflow_selfheal.core.drift.renames`: the rename scoring and pairing described above;
* :mod:`~airflow_selfheal.core.drift.diff`: :func:`diff_snapshots`, the comparison itself.
"""

from __future__ import annotations

from airflow_selfheal.core.drift.data_types import (
    SNOWFLAKE_DEFAULT_TIME_PRECISION,
    SNOWFLAKE_MAX_BINARY,
    SNOWFLAKE_MAX_VARCHAR,
    is_widening,
    normalize_type,
    type_family,
)
from airflow_selfheal.core.drift.diff import diff_snapshots
from airflow_selfheal.core.drift.events import EVENT_KINDS, DriftEvent
from airflow_selfheal.core.drift.renames import (
    COLUMN_NAME_WEIGHT,
    COLUMN_POSITION_WEIGHT,
    COLUMN_TYPE_FAMILY_WEIGHT,
    COLUMN_TYPE_WEIGHT,
    RENAME_THRESHOLD,
    TABLE_RENAME_MIN_OVERLAP,
    TABLE_RENAME_NOISE_PENALTY,
)
from airflow_selfheal.core.drift.report import REPORT_STATUSES, DriftPolicy, DriftReport
from airflow_selfheal.core.drift.snapshot import (
    INFORMATION_SCHEMA_COLUMNS,
    SNAPSHOT_SOURCES,
    ColumnSchema,
    SchemaSnapshot,
    TableSchema,
)

__all__ = [
    "COLUMN_NAME_WEIGHT",
    "COLUMN_POSITION_WEIGHT",
    "COLUMN_TYPE_FAMILY_WEIGHT",
    "COLUMN_TYPE_WEIGHT",
    "EVENT_KINDS",
    "INFORMATION_SCHEMA_COLUMNS",
    "RENAME_THRESHOLD",
    "REPORT_STATUSES",
    "SNAPSHOT_SOURCES",
    "SNOWFLAKE_DEFAULT_TIME_PRECISION",
    "SNOWFLAKE_MAX_BINARY",
    "SNOWFLAKE_MAX_VARCHAR",
    "TABLE_RENAME_MIN_OVERLAP",
    "TABLE_RENAME_NOISE_PENALTY",
    "ColumnSchema",
    "DriftEvent",
    "DriftPolicy",
    "DriftReport",
    "SchemaSnapshot",
    "TableSchema",
    "diff_snapshots",
    "is_widening",
    "normalize_type",
    "type_family",
]
