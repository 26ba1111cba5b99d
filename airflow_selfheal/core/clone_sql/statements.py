"""
The statements and metadata queries of a clone, as exact text in Snowflake's documented spelling.

Every identifier is strictly quoted (:func:`~airflow_selfheal.core.identifiers.quote_identifier`), so the text
does not move with the sqlglot version and SQL cannot be smuggled in through a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_selfheal.core.clone_sql.names import CLONE_MARKER, _utc, name_parts
from airflow_selfheal.core.identifiers import qualified, quote_identifier

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from airflow_selfheal.core.clone_sql.names import ObjectName


def at_clause(at: datetime) -> str:
    """
    Snowflake's time-travel clause for a moment, in UTC with microseconds.

    :param at: a timezone-aware datetime.
    :return: e.g. ``AT(TIMESTAMP => '2026-01-01 10:00:00.000000+00:00'::timestamp_tz)``.
    :raises ValueError: on a naive datetime (its meaning would depend on the session's time zone).
    """
    literal = _utc(at, "at").isoformat(sep=" ", timespec="microseconds")
    return f"AT(TIMESTAMP => '{literal}'::timestamp_tz)"


def _with_at(sql: str, at: datetime | None) -> str:
    return sql if at is None else f"{sql} {at_clause(at)}"


def clone_database(target: ObjectName, source: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE DATABASE <target> CLONE <source> [AT(...)]``; never ``OR REPLACE``, so an existing name fails.

    :param target: the clone's name.
    :param source: the database to clone.
    :param at: clone the state at this moment (time travel); default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE DATABASE {qualified(*name_parts(target, 1, 'target'))} "
        f"CLONE {qualified(*name_parts(source, 1, 'source'))}",
        at,
    )


def clone_schema(target: ObjectName, source: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE SCHEMA <db.schema> CLONE <db.schema> [AT(...)]``.

    :param target: the new schema, ``DATABASE.SCHEMA``.
    :param source: the schema to clone, ``DATABASE.SCHEMA``.
    :param at: clone the state at this moment; default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE SCHEMA {qualified(*name_parts(target, 2, 'target'))} "
        f"CLONE {qualified(*name_parts(source, 2, 'source'))}",
        at,
    )


def clone_table(target_fqn: ObjectName, source_fqn: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE TABLE <db.schema.table> CLONE <db.schema.table> [AT(...)]``.

    :param target_fqn: the new table, ``DATABASE.SCHEMA.TABLE``.
    :param source_fqn: the table to clone, ``DATABASE.SCHEMA.TABLE``.
    :param at: clone the state at this moment; default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE TABLE {qualified(*name_parts(target_fqn, 3, 'target_fqn'))} "
        f"CLONE {qualified(*name_parts(source_fqn, 3, 'source_fqn'))}",
        at,
    )


def create_database(name: ObjectName, if_not_exists: bool = False) -> str:
    """
    ``CREATE DATABASE [IF NOT EXISTS] <name>``.

    :param name: the database.
    :param if_not_exists: tolerate an existing database.
    :return: the statement.
    """
    clause = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE DATABASE {clause}{qualified(*name_parts(name, 1))}"


def create_schema(fqn: ObjectName, if_not_exists: bool = True) -> str:
    """
    ``CREATE SCHEMA [IF NOT EXISTS] <db.schema>``.

    :param fqn: ``DATABASE.SCHEMA``.
    :param if_not_exists: tolerate an existing schema.
    :return: the statement.
    """
    clause = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE SCHEMA {clause}{qualified(*name_parts(fqn, 2))}"


def drop_database(name: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP DATABASE [IF EXISTS] <name>``. Callers must check the name first (see :func:`parse_clone_name`).

    :param name: the database.
    :param if_exists: tolerate a missing database.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP DATABASE {clause}{qualified(*name_parts(name, 1))}"


def drop_schema(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP SCHEMA [IF EXISTS] <db.schema> CASCADE``.

    :param fqn: ``DATABASE.SCHEMA``.
    :param if_exists: tolerate a missing schema.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP SCHEMA {clause}{qualified(*name_parts(fqn, 2))} CASCADE"


def drop_table(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP TABLE [IF EXISTS] <db.schema.table>``.

    :param fqn: ``DATABASE.SCHEMA.TABLE``.
    :param if_exists: tolerate a missing table.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP TABLE {clause}{qualified(*name_parts(fqn, 3))}"


def drop_view(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP VIEW [IF EXISTS] <db.schema.view>``.

    :param fqn: ``DATABASE.SCHEMA.VIEW``.
    :param if_exists: tolerate a missing view.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP VIEW {clause}{qualified(*name_parts(fqn, 3))}"


def swap_tables(a: ObjectName, b: ObjectName) -> str:
    """
    ``ALTER TABLE <a> SWAP WITH <b>``: exchange two tables' contents and metadata in one atomic step.

    :param a: ``DATABASE.SCHEMA.TABLE``.
    :param b: ``DATABASE.SCHEMA.TABLE``.
    :return: the statement.
    """
    return f"ALTER TABLE {qualified(*name_parts(a, 3, 'a'))} SWAP WITH {qualified(*name_parts(b, 3, 'b'))}"


def show_clone_databases() -> str:
    """``SHOW DATABASES`` narrowed to names containing the clone marker; callers still check each name."""
    return f"SHOW DATABASES LIKE '%{CLONE_MARKER}%'"


def schemas_query(database: str) -> str:
    """
    The schemas of a database other than ``INFORMATION_SCHEMA``: ``SCHEMA_NAME``.

    :param database: stored-form database name.
    :return: the query.
    """
    return (
        f"select SCHEMA_NAME from {quote_identifier(database)}.INFORMATION_SCHEMA.SCHEMATA "  # noqa: S608
        "where SCHEMA_NAME <> 'INFORMATION_SCHEMA' order by SCHEMA_NAME"
    )


# --------------------------------------------------------------------------------------------------------------
# Metadata queries (one per database, whatever the number of objects)
# --------------------------------------------------------------------------------------------------------------


def _schema_filter(schema_count: int | None) -> str:
    if schema_count is None:
        return "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA' "
    if schema_count < 1:
        raise ValueError("schema_count must be at least 1 (or None for every schema)")
    return f"where TABLE_SCHEMA in ({', '.join(['%s'] * schema_count)}) "


def tables_query(database: str, schema_count: int | None = None) -> str:
    """
    Every table-like object of a database: ``TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE``.

    :param database: stored-form database name.
    :param schema_count: bind that many schema names as parameters; None for every schema.
    :return: the query.
    """
    return (
        "select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE "  # noqa: S608 - quoted identifier, bound values
        f"from {quote_identifier(database)}.INFORMATION_SCHEMA.TABLES "
        f"{_schema_filter(schema_count)}order by TABLE_SCHEMA, TABLE_NAME"
    )


def views_query(database: str, schema_count: int | None = None) -> str:
    """
    Every view of a database with its DDL: ``TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION``.

    :param database: stored-form database name.
    :param schema_count: bind that many schema names as parameters; None for every schema.
    :return: the query.
    """
    return (
        "select TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION "  # noqa: S608 - quoted identifier, bound values
        f"from {quote_identifier(database)}.INFORMATION_SCHEMA.VIEWS "
        f"{_schema_filter(schema_count)}order by TABLE_SCHEMA, TABLE_NAME"
    )


def row_counts_query(database: str, tables: Sequence[tuple[str, str]], at: datetime | None = None) -> str:
    """
    ``COUNT(*)`` of several tables in one statement, each row labelled by its index in ``tables``.

    On Snowflake a bare ``COUNT(*)`` is answered from table metadata, so this is cheap; on the stand-in it scans.

    :param database: stored-form database name.
    :param tables: ``(schema, table)`` pairs in stored form.
    :param at: count the state at this moment (time travel); default now.
    :return: a ``union all`` query returning ``(index, row_count)``.
    """
    if not tables:
        raise ValueError("tables must not be empty")
    return " union all ".join(
        f"select {index} as I, count(*) as N from {_with_at(qualified(database, schema, table), at)}"  # noqa: S608
        for index, (schema, table) in enumerate(tables)
    )


def view_rows_check_query(clone_fqn: ObjectName, source_fqn: ObjectName) -> str:
    """
    Compare a view in the clone with its source row for row.

    The query returns ``(clone rows, source rows, only in clone, only in source)``.

    Set difference both ways plus the counts catches a view that was re-created with another meaning, which
    neither its columns nor its creation reveal. Only re-created views are compared this way, since it runs both.

    :param clone_fqn: ``DATABASE.SCHEMA.VIEW`` in the clone.
    :param source_fqn: the same view in the source.
    :return: one query returning one row of four counts.
    """
    clone = qualified(*name_parts(clone_fqn, 3, "clone_fqn"))
    source = qualified(*name_parts(source_fqn, 3, "source_fqn"))
    return (
        f"select (select count(*) from {clone}) as CLONE_ROWS, "  # noqa: S608 - quoted identifiers only
        f"(select count(*) from {source}) as SOURCE_ROWS, "
        f"(select count(*) from (select * from {clone} except select * from {source})) as ONLY_IN_CLONE, "
        f"(select count(*) from (select * from {source} except select * from {clone})) as ONLY_IN_SOURCE"
    )
