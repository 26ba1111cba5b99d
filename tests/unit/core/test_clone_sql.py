from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlglot

from airflow_selfheal.core.clone_sql import (
    MAX_IDENTIFIER_LENGTH,
    at_clause,
    clone_database,
    clone_name,
    clone_schema,
    clone_table,
    create_database,
    create_schema,
    drop_database,
    drop_schema,
    drop_table,
    find_prod_references,
    name_parts,
    parse_clone_name,
    retarget_view_ddl,
    row_counts_query,
    scan_prod_references,
    schemas_query,
    show_clone_databases,
    split_qualified,
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


class TestQuoting:
    @pytest.mark.parametrize(
        ("name", "parts"),
        [
            pytest.param("demo.raw.orders", ("DEMO", "RAW", "ORDERS"), id="folds"),
            pytest.param('"My.Db" . raw."x""y"', ("My.Db", "RAW", 'x"y'), id="quoted-dots-and-quotes"),
            pytest.param("  demo  ", ("DEMO",), id="spaces"),
        ],
    )
    def test_split(self, name: str, parts: tuple[str, ...]) -> None:
        assert split_qualified(name) == parts

    def test_stored_parts_are_quoted_not_parsed(self) -> None:
        hostile = 'RAW"; DROP DATABASE PROD; --'
        sql = clone_table(("C", hostile, "T"), ("DEMO", hostile, "T"))
        assert sql == (
            'CREATE TABLE "C"."RAW""; DROP DATABASE PROD; --"."T" CLONE "DEMO"."RAW""; DROP DATABASE PROD; --"."T"'
        )
        assert len(sqlglot.parse(sql, read="snowflake")) == 1

    @pytest.mark.parametrize(
        ("name", "fragment"),
        [
            pytest.param("demo; drop database prod", "not a valid unquoted", id="statement"),
            pytest.param('"demo"; drop database prod', "unexpected ';'", id="after-quote"),
            pytest.param("demo..orders", "empty name part", id="empty-part"),
            pytest.param('"demo', "unterminated", id="unterminated"),
            pytest.param("demo.raw", "must be DATABASE.SCHEMA.TABLE", id="too-few-parts"),
        ],
    )
    def test_bad_names_are_refused(self, name: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            clone_table("C.RAW.T", name)

    def test_nul_in_stored_part_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid identifier"):
            name_parts(("C", "a\x00b"), 2)


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


class TestCloneName:
    def test_example(self) -> None:
        assert (
            clone_name("DEMO", "inc-0123abcd", created_at=T0)
            == "DEMO__SELFHEAL_INC_0123ABCD__20260101T100000Z"
        )

    @pytest.mark.parametrize(
        ("prefix", "incident_id"),
        [
            pytest.param("DEMO", "inc-3f2a9c0d4e5b6a71", id="real-id"),
            pytest.param("my-db", "inc/0123 x", id="odd-characters"),
            pytest.param("1DB", "x", id="prefix-starts-with-digit"),
            pytest.param("D" * 300, "i" * 400, id="too-long"),
            pytest.param('"; drop database prod; --', "inc'; drop", id="hostile"),
        ],
    )
    def test_valid_unquoted_and_bounded(self, prefix: str, incident_id: str) -> None:
        name = clone_name(prefix, incident_id, created_at=T0)
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name)
        assert len(name) <= MAX_IDENTIFIER_LENGTH
        parsed = parse_clone_name(name)
        assert parsed is not None
        assert parsed.created_at == T0

    def test_round_trip(self) -> None:
        parsed = parse_clone_name(clone_name("DEMO", "inc-0123abcd", created_at=T0))
        assert parsed is not None
        assert (parsed.prefix, parsed.incident, parsed.created_at) == ("DEMO", "INC_0123ABCD", T0)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param("inc-0001", "inc-0002", id="two-incidents"),
            pytest.param("inc/a", "inc?a", id="lossy-ids-get-a-hash"),
            pytest.param("x" * 300 + "1", "x" * 300 + "2", id="truncated-ids-get-a-hash"),
        ],
    )
    def test_distinct_incidents_get_distinct_names(self, first: str, second: str) -> None:
        assert clone_name("DEMO", first, created_at=T0) != clone_name("DEMO", second, created_at=T0)

    def test_same_incident_later_is_a_new_name(self) -> None:
        later = T0 + timedelta(seconds=1)
        assert clone_name("DEMO", "inc-1", created_at=T0) != clone_name("DEMO", "inc-1", created_at=later)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("DEMO", id="prod"),
            pytest.param("PROD_DB", id="prod-underscore"),
            pytest.param("DEMO__SELFHEAL_INC_1", id="no-stamp"),
            pytest.param("demo__selfheal_inc_1__20260101T100000Z", id="lower-case"),
            pytest.param("DEMO__SELFHEAL_INC_1__20261399T100000Z", id="impossible-date"),
            pytest.param('DEMO__SELFHEAL_INC_1__20260101T100000Z"; DROP DATABASE DEMO', id="suffix"),
            pytest.param("DEMO_SELFHEAL_INC_1_20260101T100000Z", id="single-underscores"),
        ],
    )
    def test_non_clone_names_do_not_parse(self, name: str) -> None:
        assert parse_clone_name(name) is None

    def test_naive_created_at_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            clone_name("DEMO", "inc-1", created_at=datetime(2026, 1, 1))

    def test_empty_incident_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no letters or digits"):
            clone_name("DEMO", "--", created_at=T0)


REALISTIC_VIEW = """
create or replace secure view ANALYTICS.ORDER_FACTS copy grants comment = 'orders with customers'
as
with recent as (
    select * from PROD_DB.RAW.ORDERS where ORDER_DATE > dateadd(day, -30, current_date())
)
select r.ORDER_ID, c.EMAIL, PROD_DB.UTIL.MASK(c.EMAIL) as MASKED, 'PROD_DB.RAW.SECRET' as NOTE
from recent r
join ANALYTICS.Y c on c.CUSTOMER_ID = r.CUSTOMER_ID
join "prod_db".RAW.OTHER o on o.ID = r.ORDER_ID
join PROD_DB..LEGACY l on l.ID = r.ORDER_ID
join OTHER_DB.RAW.PAYMENTS p on p.ORDER_ID = r.ORDER_ID
-- PROD_DB.RAW.IN_A_COMMENT
"""


class TestProdReferences:
    def test_brief_example(self) -> None:
        ddl = "create or replace view X as select * from PROD_DB.RAW.ORDERS join ANALYTICS.Y on true"
        assert find_prod_references(ddl, "PROD_DB") == ["PROD_DB.RAW.ORDERS"]

    def test_realistic_view(self) -> None:
        scan = scan_prod_references(REALISTIC_VIEW, "PROD_DB")
        # Relative names, the CTE, another database, a quoted lower-case namesake, a string and a comment are
        # not references; the function call and the double-dot (PUBLIC) form are.
        assert scan.references == ("PROD_DB.PUBLIC.LEGACY", "PROD_DB.RAW.ORDERS", "PROD_DB.UTIL.MASK")
        assert scan.parsed is True

    def test_the_views_own_name_is_not_a_reference(self) -> None:
        ddl = "create view PROD_DB.ANALYTICS.V as select * from RAW.ORDERS"
        assert find_prod_references(ddl, "PROD_DB") == []

    def test_four_part_column_is_a_reference(self) -> None:
        ddl = "create view V as select PROD_DB.RAW.ORDERS.ID from PROD_DB.RAW.ORDERS"
        assert find_prod_references(ddl, "PROD_DB") == ["PROD_DB.RAW.ORDERS"]

    def test_quoted_case_sensitive_prod_database(self) -> None:
        ddl = 'create view V as select * from "prod_db".raw.orders join PROD_DB.RAW.X on true'
        assert find_prod_references(ddl, "prod_db") == ["prod_db.RAW.ORDERS"]

    def test_unparseable_ddl_falls_back_to_regex_and_says_so(self) -> None:
        ddl = "create view V as select * from prod_db.raw.orders where ((( and PROD_DB..LEGACY"
        scan = scan_prod_references(ddl, "PROD_DB")
        assert scan.parsed is False
        assert scan.error
        assert scan.references == ("PROD_DB.PUBLIC.LEGACY", "PROD_DB.RAW.ORDERS")

    def test_regex_fallback_does_not_match_longer_names(self) -> None:
        ddl = "create view V as select * from XPROD_DB.RAW.A join PROD_DB_2.RAW.B where ((("
        assert scan_prod_references(ddl, "PROD_DB").references == ()

    def test_stand_in_view_definition_has_no_database(self) -> None:
        # What the embedded stand-in stores in INFORMATION_SCHEMA.VIEWS for a view created as DEMO.RAW.ORDERS.
        ddl = "CREATE VIEW ANALYTICS.V_ORDERS AS SELECT * FROM RAW.ORDERS WHERE (STATUS = 'placed');"
        assert find_prod_references(ddl, "DEMO") == []


class TestRetargetViewDdl:
    def test_points_view_and_references_at_the_clone(self) -> None:
        ddl = "create view X as select * from PROD_DB.RAW.ORDERS o join ANALYTICS.Y y on o.ID = y.ID join Z on true"
        rewritten = retarget_view_ddl(
            ddl, source_database="PROD_DB", target_database="C", view_schema="ANALYTICS", view_name="X"
        )
        assert rewritten == (
            'CREATE OR REPLACE VIEW "C"."ANALYTICS"."X" AS SELECT * FROM "C".RAW.ORDERS AS o '
            'JOIN "C".ANALYTICS.Y AS y ON o.ID = y.ID JOIN "C"."ANALYTICS".Z ON TRUE'
        )

    def test_realistic_view_no_longer_reads_prod(self) -> None:
        rewritten = retarget_view_ddl(
            REALISTIC_VIEW,
            source_database="PROD_DB",
            target_database="PROD_DB__SELFHEAL_INC_1__20260101T100000Z",
            view_schema="ANALYTICS",
            view_name="ORDER_FACTS",
        )
        assert find_prod_references(rewritten, "PROD_DB") == []
        assert rewritten.startswith(
            'CREATE OR REPLACE SECURE VIEW "PROD_DB__SELFHEAL_INC_1__20260101T100000Z"."ANALYTICS"."ORDER_FACTS"'
        )
        assert "FROM recent AS r" in rewritten  # the CTE is not qualified
        assert "OTHER_DB.RAW.PAYMENTS" in rewritten  # another database is left alone
        assert '"prod_db".RAW.OTHER' in rewritten  # a different (case-sensitive) database too
        assert "'PROD_DB.RAW.SECRET'" in rewritten  # string literals are data

    def test_column_list_is_kept(self) -> None:
        rewritten = retarget_view_ddl(
            "create view V (A, B) as select 1, 2",
            source_database="P",
            target_database="C",
            view_schema="S",
            view_name="V",
        )
        assert rewritten == 'CREATE OR REPLACE VIEW "C"."S"."V" (A, B) AS SELECT 1, 2'

    @pytest.mark.parametrize(
        ("ddl", "fragment"),
        [
            pytest.param("create table T as select 1", "not a single CREATE VIEW", id="not-a-view"),
            pytest.param("create view V as select 1; drop database P", "not a single CREATE VIEW", id="two"),
            pytest.param("create view V as select (((", "does not parse", id="garbage"),
        ],
    )
    def test_refuses_what_it_cannot_rewrite(self, ddl: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment):
            retarget_view_ddl(ddl, source_database="P", target_database="C", view_schema="S", view_name="V")
