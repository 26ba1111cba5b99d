from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlglot

from airflow_selfheal.core.clone_sql import (
    at_clause,
    clone_database,
    clone_schema,
    clone_table,
    create_database,
    create_schema,
    drop_database,
    drop_schema,
    drop_table,
    row_counts_query,
    schemas_query,
    show_clone_databases,
    swap_tables,
    tables_query,
    views_query,
)

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


AT_SQL = "AT(TIMESTAMP => '2026-01-01 10:00:00.000000+00:00'::timestamp_tz)"

STATEMENTS = [
    pytest.param(clone_database("DEMO__X", "DEMO"), 'CREATE DATABASE "DEMO__X" CLONE "DEMO"', id="clone-db"),
    pytest.param(
        clone_database("demo__x", "demo", at=T0),
        f'CREATE DATABASE "DEMO__X" CLONE "DEMO" {AT_SQL}',
        id="clone-db-at",
    ),
    pytest.param(
        clone_schema("C.RAW", ("DEMO", "RAW")),
        'CREATE SCHEMA "C"."RAW" CLONE "DEMO"."RAW"',
        id="clone-schema",
    ),
    pytest.param(
        clone_schema("C.RAW", "DEMO.RAW", at=T0),
        f'CREATE SCHEMA "C"."RAW" CLONE "DEMO"."RAW" {AT_SQL}',
        id="clone-schema-at",
    ),
    pytest.param(
        clone_table("c.raw.orders", "demo.raw.orders"),
        'CREATE TABLE "C"."RAW"."ORDERS" CLONE "DEMO"."RAW"."ORDERS"',
        id="clone-table",
    ),
    pytest.param(
        clone_table(("C", "RAW", "Orders"), ("DEMO", "RAW", "Orders"), at=T0),
        f'CREATE TABLE "C"."RAW"."Orders" CLONE "DEMO"."RAW"."Orders" {AT_SQL}',
        id="clone-table-at-stored-parts",
    ),
    pytest.param(create_database("C"), 'CREATE DATABASE "C"', id="create-db"),
    pytest.param(
        create_database("C", if_not_exists=True), 'CREATE DATABASE IF NOT EXISTS "C"', id="create-db-ine"
    ),
    pytest.param(create_schema("C.RAW"), 'CREATE SCHEMA IF NOT EXISTS "C"."RAW"', id="create-schema"),
    pytest.param(drop_database("C"), 'DROP DATABASE IF EXISTS "C"', id="drop-db"),
    pytest.param(drop_database("C", if_exists=False), 'DROP DATABASE "C"', id="drop-db-strict"),
    pytest.param(drop_schema("C.RAW"), 'DROP SCHEMA IF EXISTS "C"."RAW" CASCADE', id="drop-schema"),
    pytest.param(drop_table("C.RAW.T"), 'DROP TABLE IF EXISTS "C"."RAW"."T"', id="drop-table"),
    pytest.param(drop_table("C.RAW.T", if_exists=False), 'DROP TABLE "C"."RAW"."T"', id="drop-table-strict"),
    pytest.param(
        swap_tables("demo.analytics.orders", "c.analytics.orders"),
        'ALTER TABLE "DEMO"."ANALYTICS"."ORDERS" SWAP WITH "C"."ANALYTICS"."ORDERS"',
        id="swap",
    ),
    pytest.param(show_clone_databases(), "SHOW DATABASES LIKE '%SELFHEAL%'", id="show-clones"),
]


class TestStatements:
    @pytest.mark.parametrize(("sql", "expected"), STATEMENTS)
    def test_exact_text(self, sql: str, expected: str) -> None:
        assert sql == expected

    @pytest.mark.parametrize(("sql", "expected"), STATEMENTS)
    def test_is_valid_snowflake(self, sql: str, expected: str) -> None:
        # Snowflake-only forms (AT, SWAP WITH, SCHEMA CLONE) cannot run on the stand-in; parse them instead.
        statement = sqlglot.parse_one(sql, read="snowflake")
        assert not isinstance(statement, sqlglot.exp.Command), sql

    def test_at_is_converted_to_utc_with_microseconds(self) -> None:
        local = datetime(2026, 1, 1, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
        assert at_clause(local) == "AT(TIMESTAMP => '2026-01-01 10:00:00.123456+00:00'::timestamp_tz)"

    def test_naive_at_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            clone_database("C", "DEMO", at=datetime(2026, 1, 1, 10, 0))


class TestMetadataQueries:
    def test_tables_every_schema(self) -> None:
        assert tables_query("DEMO") == (
            'select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE from "DEMO".INFORMATION_SCHEMA.TABLES '
            "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA' order by TABLE_SCHEMA, TABLE_NAME"
        )

    def test_views_bound_schemas(self) -> None:
        assert views_query("DEMO", 2) == (
            'select TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION from "DEMO".INFORMATION_SCHEMA.VIEWS '
            "where TABLE_SCHEMA in (%s, %s) order by TABLE_SCHEMA, TABLE_NAME"
        )

    def test_schemas(self) -> None:
        assert schemas_query('we"ird') == (
            'select SCHEMA_NAME from "we""ird".INFORMATION_SCHEMA.SCHEMATA '
            "where SCHEMA_NAME <> 'INFORMATION_SCHEMA' order by SCHEMA_NAME"
        )

    def test_zero_schemas_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            tables_query("DEMO", 0)

    def test_row_counts_one_statement_labelled_by_index(self) -> None:
        assert row_counts_query("DEMO", [("RAW", "ORDERS"), ("RAW", "x")], at=T0) == (
            f'select 0 as I, count(*) as N from "DEMO"."RAW"."ORDERS" {AT_SQL} union all '
            f'select 1 as I, count(*) as N from "DEMO"."RAW"."x" {AT_SQL}'
        )
