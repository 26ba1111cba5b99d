"""
Bounded, read-only probes of relations in a clone, and the data diff of repaired models, clone vs production.

Every statement is built as a sqlglot tree with quoted identifiers and string literals, and passes
:func:`~airflow_selfheal.core.guards.read_only_sql` right before it is sent, which names the one database it may
read: one ``SELECT``/``WITH`` query of that database's tables, views and information schema, calling built-in
functions only, with no table function but ``FLATTEN``. What is sent is the text the guard returns, whose ``LIMIT``
is the number of rows fetched (20 for a sample, 1 for a count, :data:`MAX_COLUMNS` for the columns). Anything else
is refused before it reaches the warehouse.

Per relation, :func:`probe_relations` records the columns and types, the row count, a sample of 20 rows and the
null count per column over at most ``scan_rows`` rows (a bounded scan, so a probe of a large table stays cheap).
Sample values are redacted and cut to a short length; errors are recorded per relation and per query, so one
broken view does not hide the rest. Everything returned is JSON-serialisable.

.. code-block:: python

    hook = SelfhealSnowflakeHook(snowflake_conn_id="snowflake_prod")
    probes = probe_relations(hook, clone.clone_database, ["RAW.ORDERS", "ANALYTICS.STG_ORDERS"])
    diff = data_diff(hook, ["ANALYTICS.STG_ORDERS", "ANALYTICS.FCT_ORDERS"], clone.clone_database, "DEMO")
    sandbox.record_evidence("probes", probes)
    sandbox.record_evidence("data_diff", diff)
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.clone_sql import split_qualified
from airflow_selfheal.core.guards import read_only_sql
from airflow_selfheal.core.identifiers import quote_identifier
from airflow_selfheal.core.redaction import redact, truncate

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlglot import exp

    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

DIALECT = "snowflake"
SAMPLE_ROWS = 20
#: Rows scanned for the null counts.
SCAN_ROWS = 100_000
#: Columns read from the information schema per relation, and null-counted per relation.
MAX_COLUMNS = 500
#: Characters kept of one sample value, and of one error message.
VALUE_LIMIT = 200
ERROR_LIMIT = 500
#: A probe the warehouse has not answered in this time is cancelled (the connector aborts the query): a LIMIT
#: bounds the rows returned, not the work a ``COUNT(*)`` over a huge table costs.
STATEMENT_TIMEOUT_SECONDS = 60


# ---------------------------------------------------------------------------------------------------------------
# Statements (exact text unit-tested)
# ---------------------------------------------------------------------------------------------------------------


def _identifier(name: str) -> exp.Identifier:
    from sqlglot import exp

    return exp.Identifier(this=name, quoted=True)


def _table(database: str, schema: str, name: str) -> exp.Table:
    from sqlglot import exp

    return exp.Table(this=_identifier(name), db=_identifier(schema), catalog=_identifier(database))


def columns_sql(database: str, schema: str, name: str, limit: int = MAX_COLUMNS) -> str:
    """
    The columns of one relation from the database's information schema.

    :param database: stored form.
    :param schema: stored form.
    :param name: stored form.
    :param limit: most columns returned.
    :return: ``SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM "DB".INFORMATION_SCHEMA.COLUMNS WHERE ... LIMIT n``.
    """
    from sqlglot import exp

    source = exp.Table(
        this=exp.to_identifier("COLUMNS"),
        db=exp.to_identifier("INFORMATION_SCHEMA"),
        catalog=_identifier(database),
    )
    condition = exp.and_(
        exp.EQ(this=exp.column("TABLE_SCHEMA"), expression=exp.Literal.string(schema)),
        exp.EQ(this=exp.column("TABLE_NAME"), expression=exp.Literal.string(name)),
    )
    query = (
        exp.select("COLUMN_NAME", "DATA_TYPE", "IS_NULLABLE")
        .from_(source)
        .where(condition)
        .order_by("ORDINAL_POSITION")
        .limit(limit)
    )
    return str(query.sql(dialect=DIALECT))


def row_count_sql(database: str, schema: str, name: str) -> str:
    """
    The row count of one relation.

    :param database: stored form.
    :param schema: stored form.
    :param name: stored form.
    :return: ``SELECT COUNT(*) AS ROW_COUNT FROM "DB"."SCHEMA"."NAME" LIMIT 1``.
    """
    from sqlglot import exp

    query = exp.select(exp.alias_(exp.Count(this=exp.Star()), "ROW_COUNT")).from_(
        _table(database, schema, name)
    )
    return str(query.limit(1).sql(dialect=DIALECT))


def sample_sql(database: str, schema: str, name: str, rows: int = SAMPLE_ROWS) -> str:
    """
    The first ``rows`` rows of one relation, in no particular order.

    :param database: stored form.
    :param schema: stored form.
    :param name: stored form.
    :param rows: rows returned.
    :return: ``SELECT * FROM "DB"."SCHEMA"."NAME" LIMIT <rows>``.
    """
    from sqlglot import exp

    return str(exp.select("*").from_(_table(database, schema, name)).limit(rows).sql(dialect=DIALECT))


def null_counts_sql(
    database: str, schema: str, name: str, columns: Sequence[str], scan_rows: int = SCAN_ROWS
) -> str:
    """
    Null counts of ``columns`` over at most ``scan_rows`` rows: the first value is the rows scanned.

    :param database: stored form.
    :param schema: stored form.
    :param name: stored form.
    :param columns: stored-form column names.
    :param scan_rows: rows scanned at most.
    :return: ``SELECT COUNT(*), COUNT(*) - COUNT("C1"), ... FROM (SELECT "C1", ... FROM t LIMIT n) LIMIT 1``.
    """
    from sqlglot import exp

    if not columns:
        raise ValueError("null_counts_sql needs at least one column")
    inner = exp.select(*[exp.column(_identifier(column)) for column in columns])
    inner = inner.from_(_table(database, schema, name)).limit(scan_rows)
    counts: list[exp.Expr] = [exp.Count(this=exp.Star())]
    for column in columns:
        counts.append(
            exp.Sub(
                this=exp.Count(this=exp.Star()), expression=exp.Count(this=exp.column(_identifier(column)))
            )
        )
    query = exp.select(*counts).from_(inner.subquery("SCANNED")).limit(1)
    return str(query.sql(dialect=DIALECT))


# ---------------------------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """
    A JSON-serialisable form of one value from the connector, redacted and cut to :data:`VALUE_LIMIT`.

    :param value: any cell value.
    :return: None, bool, int, float, or str (decimals, times and binaries as text).
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return _cut("base64:" + base64.b64encode(bytes(value)).decode())
    return _cut(redact(str(value)))


def _cut(text: str) -> str:
    """The head of a cell value: a sample shows what values look like, not all of them."""
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return truncate(redact(text), ERROR_LIMIT)


class _ReadOnlySession:
    """One connection; every statement passes :func:`read_only_sql` first, and its text is what is sent."""

    def __init__(self, hook: SelfhealSnowflakeHook) -> None:
        self.conn = hook.get_conn()
        self.statements: list[str] = []

    def query(self, sql: str, max_rows: int, database: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """
        Send one read of ``database``, limited to ``max_rows`` rows in the SQL and in the fetch.

        :param database: stored form.
        :raises ReadOnlyViolation: before anything is sent, when the statement is not such a read.
        """
        sql = read_only_sql(sql, database=quote_identifier(database), limit=max_rows)
        self.statements.append(sql)
        cursor = self.conn.cursor()
        try:
            cursor.execute(sql, timeout=STATEMENT_TIMEOUT_SECONDS)
            names = [str(column[0]) for column in cursor.description or ()]
            return names, [tuple(row) for row in cursor.fetchmany(max_rows)]
        finally:
            cursor.close()

    def close(self) -> None:
        self.conn.close()


def _relation_parts(relation: str, database: str) -> tuple[str, str]:
    parts = split_qualified(relation)
    if len(parts) == 3:
        if parts[0] != database:
            raise ValueError(f"relation {relation!r} is not in {database}")
        parts = parts[1:]
    if len(parts) != 2:
        raise ValueError(f"relation must be SCHEMA.NAME or {database}.SCHEMA.NAME, got {relation!r}")
    return parts[0], parts[1]


def _columns(session: _ReadOnlySession, database: str, schema: str, name: str) -> list[dict[str, Any]]:
    _, rows = session.query(columns_sql(database, schema, name), MAX_COLUMNS, database)
    return [
        {"name": str(column), "type": str(data_type), "nullable": str(nullable).upper() == "YES"}
        for column, data_type, nullable in rows
    ]


def _row_count(session: _ReadOnlySession, database: str, schema: str, name: str) -> int:
    _, rows = session.query(row_count_sql(database, schema, name), 1, database)
    return int(rows[0][0])


def probe_relations(
    hook: SelfhealSnowflakeHook,
    database: str,
    relations: Iterable[str],
    *,
    sample_rows: int = SAMPLE_ROWS,
    scan_rows: int = SCAN_ROWS,
) -> dict[str, Any]:
    """
    Probe relations of ``database`` (the clone): columns, row count, a sample and null counts.

    :param hook: a Snowflake hook (its connection must be able to read ``database``).
    :param database: the clone, as written in SQL.
    :param relations: ``SCHEMA.NAME`` or ``<database>.SCHEMA.NAME``.
    :param sample_rows: rows in the sample (at most 20 by default).
    :param scan_rows: rows scanned at most for the null counts.
    :return: ``{"database", "statements", "relations": {"SCHEMA.NAME": {"exists", "columns", "row_count",
        "sample": {"columns", "rows"}, "null_counts", "null_counts_scanned_rows", "errors"}}}``.
    """
    database = split_qualified(database)[0]
    targets = [_relation_parts(relation, database) for relation in relations]
    session = _ReadOnlySession(hook)
    results: dict[str, Any] = {}
    try:
        for schema, name in targets:
            results[f"{schema}.{name}"] = _probe_one(session, database, schema, name, sample_rows, scan_rows)
    finally:
        session.close()
    return {"database": database, "statements": len(session.statements), "relations": results}


def _probe_one(
    session: _ReadOnlySession, database: str, schema: str, name: str, sample_rows: int, scan_rows: int
) -> dict[str, Any]:
    probe: dict[str, Any] = {"exists": False, "columns": [], "errors": {}}
    try:
        probe["columns"] = _columns(session, database, schema, name)
    except Exception as exc:  # noqa: BLE001 - recorded per relation, the other probes go on
        probe["errors"]["columns"] = _error_text(exc)
        return probe
    if not probe["columns"]:
        return probe
    probe["exists"] = True
    try:
        probe["row_count"] = _row_count(session, database, schema, name)
    except Exception as exc:  # noqa: BLE001
        probe["errors"]["row_count"] = _error_text(exc)
    try:
        names, rows = session.query(sample_sql(database, schema, name, sample_rows), sample_rows, database)
        probe["sample"] = {"columns": names, "rows": [[jsonable(value) for value in row] for row in rows]}
    except Exception as exc:  # noqa: BLE001
        probe["errors"]["sample"] = _error_text(exc)
    columns = [column["name"] for column in probe["columns"]]
    try:
        _, rows = session.query(null_counts_sql(database, schema, name, columns, scan_rows), 1, database)
        scanned, *nulls = rows[0]
        probe["null_counts_scanned_rows"] = int(scanned)
        probe["null_counts"] = {column: int(count) for column, count in zip(columns, nulls, strict=True)}
    except Exception as exc:  # noqa: BLE001
        probe["errors"]["null_counts"] = _error_text(exc)
    return probe


def _side(session: _ReadOnlySession, database: str, schema: str, name: str) -> dict[str, Any] | None:
    """Columns and row count of one relation, or None if the database has no such relation."""
    side: dict[str, Any] = {"database": database}
    try:
        columns = _columns(session, database, schema, name)
    except Exception as exc:  # noqa: BLE001
        side["error"] = _error_text(exc)
        return side
    if not columns:
        return None
    side["columns"] = [column["name"] for column in columns]
    side["types"] = {column["name"]: column["type"] for column in columns}
    try:
        side["row_count"] = _row_count(session, database, schema, name)
    except Exception as exc:  # noqa: BLE001
        side["error"] = _error_text(exc)
    return side


def data_diff(
    hook: SelfhealSnowflakeHook, relations: Iterable[str], clone_db: str, prod_db: str
) -> dict[str, Any]:
    """
    Row counts and columns of each relation in the clone against production.

    Each side's statements may read that side's database only: the clone's, or production's (its information
    schema and a ``COUNT(*)``, both built here).

    :param hook: a Snowflake hook that can read both databases.
    :param relations: ``SCHEMA.NAME`` of the repaired models (the same name in both databases).
    :param clone_db: the clone, as written in SQL.
    :param prod_db: production, as written in SQL.
    :return: ``{"clone_database", "prod_database", "relations": {"SCHEMA.NAME": {"status", "clone", "prod",
        "columns_added", "columns_removed", "type_changes", "row_count_delta"}}}``; ``status`` is ``new``
        (not in production), ``missing_in_clone``, ``same``, ``changed`` or ``error`` (a side could not be read;
        its ``error`` says why).
    """
    clone, prod = split_qualified(clone_db)[0], split_qualified(prod_db)[0]
    targets = [_relation_parts(relation, clone) for relation in relations]
    session = _ReadOnlySession(hook)
    results: dict[str, Any] = {}
    try:
        for schema, name in targets:
            results[f"{schema}.{name}"] = compare_relation(
                _side(session, clone, schema, name), _side(session, prod, schema, name)
            )
    finally:
        session.close()
    return {"clone_database": clone, "prod_database": prod, "relations": results}


def compare_relation(clone: dict[str, Any] | None, prod: dict[str, Any] | None) -> dict[str, Any]:
    """
    Compare one relation's two sides as :func:`data_diff` reads them.

    :param clone: ``{"database", "columns", "types", "row_count"[, "error"]}`` in the clone, or None if absent.
    :param prod: the same in production, or None if absent.
    :return: the entry described in :func:`data_diff`.
    """
    entry: dict[str, Any] = {"clone": clone, "prod": prod}
    if clone is None:
        entry["status"] = "missing_in_clone"
        return entry
    if prod is None:
        entry["status"] = "new"
        return entry
    clone_columns, prod_columns = clone.get("columns", []), prod.get("columns", [])
    entry["columns_added"] = [column for column in clone_columns if column not in prod_columns]
    entry["columns_removed"] = [column for column in prod_columns if column not in clone_columns]
    clone_types, prod_types = clone.get("types", {}), prod.get("types", {})
    entry["type_changes"] = {
        column: {"prod": prod_types[column], "clone": clone_types[column]}
        for column in clone_columns
        if column in prod_types and prod_types[column] != clone_types.get(column)
    }
    if "row_count" in clone and "row_count" in prod:
        entry["row_count_delta"] = clone["row_count"] - prod["row_count"]
    if "error" in clone or "error" in prod:
        entry["status"] = "error"
    elif (
        entry["columns_added"]
        or entry["columns_removed"]
        or entry["type_changes"]
        or entry.get("row_count_delta")
    ):
        entry["status"] = "changed"
    else:
        entry["status"] = "same"
    return entry
