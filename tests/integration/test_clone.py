"""Clones on the embedded warehouse: detect the empty database clone, fall back, verify, drop, sweep; prod untouched.

The module runs its own stand-in, so objects other test modules leave in DEMO (dbt models, drift scenarios) cannot
change what a clone of DEMO holds. A database created on the stand-in is visible to every session of the same
server at once (they share one DuckDB instance); only after a restart must a session log in naming it before it is
seen again. Snowflake has no such step, so the hook does nothing about it and these tests need not either: every
check below reads the clones from a session whose database is DEMO.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from dev.warehouse import running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

CONN_ID = "selfheal_clone_test"
TEST_SCHEMA = "CLONE_TEST"
RAW_TABLES = ("CUSTOMERS", "ORDERS", "ORDER_ITEMS", "PAYMENTS", "PRODUCTS")


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Warehouse, dict[str, int]]]:
    """DEMO.RAW loaded, plus a test schema with a view and a view on that view; the connection points here."""
    from dev.loader import load_raw

    with (
        running(tmp_path_factory.mktemp("clone-warehouse")) as warehouse,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri())
        with warehouse.connect() as conn:
            counts = load_raw(conn)
            cursor = conn.cursor()
            cursor.execute(f"create schema if not exists DEMO.{TEST_SCHEMA}")
            cursor.execute(
                f"create or replace view DEMO.{TEST_SCHEMA}.PLACED_ORDERS as "
                "select ORDER_ID, CUSTOMER_ID, STATUS from DEMO.RAW.ORDERS where STATUS = 'placed'"
            )
            cursor.execute(
                f"create or replace view DEMO.{TEST_SCHEMA}.PLACED_PER_CUSTOMER as "
                f"select CUSTOMER_ID, count(*) as N from DEMO.{TEST_SCHEMA}.PLACED_ORDERS group by CUSTOMER_ID"
            )
        yield warehouse, counts


@pytest.fixture(scope="module")
def hook(prod: tuple[Warehouse, dict[str, int]]) -> Any:
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    return SnowflakeCloneHook(snowflake_conn_id=CONN_ID)


@pytest.fixture(scope="module")
def demo_clone(
    prod: tuple[Warehouse, dict[str, int]], hook: Any
) -> tuple[Any, dict[str, str], dict[str, str]]:
    """One whole-database clone of DEMO, with prod's fingerprint taken just before and just after it."""
    warehouse, _ = prod
    with warehouse.connect() as conn:
        before = fingerprint(conn, "DEMO")
        result = hook.clone_for_incident("DEMO", "inc-00000000000000aa")
        after = fingerprint(conn, "DEMO")
    return result, before, after


def fingerprint(conn: Any, database: str) -> dict[str, str]:
    """A hash per table (columns and every row) and per view (definition), keyed ``SCHEMA.NAME``."""
    cursor = conn.cursor()
    quoted = '"' + database.replace('"', '""') + '"'
    objects = cursor.execute(
        f"select TABLE_SCHEMA, TABLE_NAME from {quoted}.INFORMATION_SCHEMA.TABLES "
        "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA' order by 1, 2"
    ).fetchall()
    result = {}
    for schema, name in objects:
        columns = cursor.execute(
            "select COLUMN_NAME, DATA_TYPE, IS_NULLABLE, ORDINAL_POSITION, NUMERIC_PRECISION, NUMERIC_SCALE, "
            f"CHARACTER_MAXIMUM_LENGTH from {quoted}.INFORMATION_SCHEMA.COLUMNS "
            "where TABLE_SCHEMA = %s and TABLE_NAME = %s order by ORDINAL_POSITION",
            (schema, name),
        ).fetchall()
        rows = sorted(repr(row) for row in cursor.execute(f'select * from {quoted}."{schema}"."{name}"'))
        result[f"{schema}.{name}"] = hashlib.sha256(repr((columns, rows)).encode()).hexdigest()
    for schema, name, definition in cursor.execute(
        f"select TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION from {quoted}.INFORMATION_SCHEMA.VIEWS "
        "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
    ):
        result[f"view:{schema}.{name}"] = hashlib.sha256(str(definition).encode()).hexdigest()
    return result


def _columns(conn: Any, database: str, schema: str, table: str) -> list[tuple[str, str, bool, int]]:
    """(name, normalised type, nullable, position) per column.

    Types are compared normalised: after CTAS the stand-in reports an unbounded VARCHAR's length as NULL where the
    loaded table says 16777216, and Snowflake spells both the same type.
    """
    from airflow_selfheal.core.drift import SchemaSnapshot, normalize_type
    from airflow_selfheal.hooks.snowflake import COLUMN_FIELDS

    rows = conn.cursor().execute(
        f'select {", ".join(COLUMN_FIELDS)} from "{database}".INFORMATION_SCHEMA.COLUMNS '
        "where TABLE_SCHEMA = %s and TABLE_NAME = %s",
        (schema, table),
    )
    (snapshot,) = SchemaSnapshot.from_rows(rows, captured_at="now").tables
    return [(col.name, normalize_type(col.data_type), col.nullable, col.position) for col in snapshot.columns]


def _rows(conn: Any, database: str, schema: str, table: str) -> list[str]:
    return sorted(
        repr(row) for row in conn.cursor().execute(f'select * from "{database}"."{schema}"."{table}"')
    )


def _count(conn: Any, fqn: str) -> int:
    return int(conn.cursor().execute(f"select count(*) from {fqn}").fetchone()[0])


def _tables(conn: Any, database: str) -> list[tuple[str, str]]:
    rows = conn.cursor().execute(
        f'select TABLE_SCHEMA, TABLE_NAME from "{database}".INFORMATION_SCHEMA.TABLES order by 1, 2'
    )
    return [(str(schema), str(name)) for schema, name in rows]


class TestCloneForIncident:
    def test_empty_database_clone_is_detected_and_filled_table_by_table(self, demo_clone: Any) -> None:
        result, _, _ = demo_clone
        assert result.strategy == "tables"
        assert result.fallback_reason == (
            "CREATE DATABASE … CLONE left 5 of 5 tables out of the clone; cloned them table by table"
        )
        assert result.missing == ()
        assert result.prod_references == {}
        assert result.verified is True
        assert re.fullmatch(r"DEMO__SELFHEAL_INC_00000000000000AA__\d{8}T\d{6}Z", result.clone_database)

    def test_every_raw_table_has_identical_columns_and_rows(
        self, prod: tuple[Warehouse, dict[str, int]], demo_clone: Any
    ) -> None:
        warehouse, counts = prod
        result, _, _ = demo_clone
        assert result.tables == tuple(f"RAW.{table}" for table in RAW_TABLES)
        assert result.row_counts == {f"RAW.{table}": counts[table] for table in RAW_TABLES}
        with warehouse.connect() as conn:  # a DEMO session sees the clone without logging in to it
            for table in RAW_TABLES:
                prod_table, clone_table = ("DEMO", "RAW", table), (result.clone_database, "RAW", table)
                assert _columns(conn, *clone_table) == _columns(conn, *prod_table), table
                assert _rows(conn, *clone_table) == _rows(conn, *prod_table), table

    def test_prod_views_are_reproduced_reading_the_clone(
        self, prod: tuple[Warehouse, dict[str, int]], demo_clone: Any, hook: Any
    ) -> None:
        warehouse, _ = prod
        result, _, _ = demo_clone
        assert result.views == (f"{TEST_SCHEMA}.PLACED_ORDERS", f"{TEST_SCHEMA}.PLACED_PER_CUSTOMER")
        assert hook.views_referencing(result.clone_database, "DEMO") == {}
        clone_view = f'"{result.clone_database}".{TEST_SCHEMA}.PLACED_PER_CUSTOMER'
        with warehouse.connect() as conn:
            placed = _count(conn, f"DEMO.{TEST_SCHEMA}.PLACED_ORDERS")
            assert placed > 0
            assert _count(conn, clone_view) == _count(conn, f"DEMO.{TEST_SCHEMA}.PLACED_PER_CUSTOMER")
            # Proof that the clone's views read the clone: a new placed order there shows up only there.
            orders = f'"{result.clone_database}".RAW.ORDERS'
            conn.cursor().execute(
                f"insert into {orders} (ORDER_ID, CUSTOMER_ID, STATUS) values (999999, 999999, 'placed')"
            )
            try:
                assert _count(conn, f'"{result.clone_database}".{TEST_SCHEMA}.PLACED_ORDERS') == placed + 1
                assert _count(conn, f"DEMO.{TEST_SCHEMA}.PLACED_ORDERS") == placed
            finally:
                conn.cursor().execute(f"delete from {orders} where ORDER_ID = 999999")

    def test_prod_is_unchanged_by_the_clone(self, demo_clone: Any) -> None:
        _, before, after = demo_clone
        assert before == after
        assert {f"RAW.{table}" for table in RAW_TABLES} <= before.keys()
        assert f"view:{TEST_SCHEMA}.PLACED_ORDERS" in before

    def test_result_round_trips_through_json(self, demo_clone: Any) -> None:
        from airflow_selfheal.hooks.snowflake_clone import CloneResult

        result, _, _ = demo_clone
        data = json.loads(json.dumps(result.to_dict()))
        assert data["missing"] == []
        assert CloneResult.from_dict(data) == result

    def test_two_incidents_get_two_independent_clones(
        self, prod: tuple[Warehouse, dict[str, int]], hook: Any
    ) -> None:
        warehouse, counts = prod
        first = hook.clone_for_incident("DEMO", "inc-00000000000000b1", tables=["RAW.ORDERS"])
        second = hook.clone_for_incident("DEMO", "inc-00000000000000b2", tables=["demo.raw.orders"])
        assert first.clone_database != second.clone_database
        assert (first.verified, second.verified) == (True, True)
        with warehouse.connect() as conn:
            conn.cursor().execute(f'delete from "{first.clone_database}".RAW.ORDERS')
            assert _count(conn, f'"{first.clone_database}".RAW.ORDERS') == 0
            assert _count(conn, f'"{second.clone_database}".RAW.ORDERS') == counts["ORDERS"]
            assert _count(conn, "DEMO.RAW.ORDERS") == counts["ORDERS"]

    def test_time_travel_is_reported_as_ignored_not_failed(self, hook: Any) -> None:
        failed_at = datetime.now(timezone.utc) - timedelta(minutes=5)
        result = hook.clone_for_incident(
            "DEMO", "inc-00000000000000c1", tables=["RAW.PAYMENTS"], at=failed_at
        )
        assert result.verified is True
        assert result.at == failed_at.isoformat()
        assert result.at_ignored_reason is not None
        assert result.at_ignored_reason.startswith("the warehouse rejected AT(TIMESTAMP => '")
        assert "does not support time travel" in result.at_ignored_reason
        assert result.at_ignored_reason.endswith("the clone holds the current state instead")

    def test_views_that_cannot_be_reproduced_are_reported(self, hook: Any) -> None:
        # Only the test schema: its views read RAW, which is outside the clone, so they cannot be re-created
        # there, and pointing them back at prod would defeat the clone.
        result = hook.clone_for_incident("DEMO", "inc-00000000000000d1", schemas=[TEST_SCHEMA.lower()])
        assert result.verified is False
        assert result.views == ()
        assert [name for name, _ in result.missing] == [
            f"{TEST_SCHEMA}.PLACED_ORDERS",
            f"{TEST_SCHEMA}.PLACED_PER_CUSTOMER",
        ]
        assert all(
            reason.startswith("could not re-create the view in the clone") for _, reason in result.missing
        )
        assert result.fallback_reason is not None
        assert result.fallback_reason.startswith(f"CREATE SCHEMA … CLONE failed for {TEST_SCHEMA}")

    def test_missing_source_table_is_reported(self, hook: Any) -> None:
        result = hook.clone_for_incident("DEMO", "inc-00000000000000e1", tables=["RAW.ORDERS", "RAW.NO_SUCH"])
        assert result.tables == ("RAW.ORDERS",)
        assert result.missing == (("RAW.NO_SUCH", "not found in DEMO (or not visible to this role)"),)
        assert result.verified is False


class TestProdReferences:
    def test_view_reading_prod_is_detected_and_repointed(
        self, prod: tuple[Warehouse, dict[str, int]], hook: Any
    ) -> None:
        # What a Snowflake database clone leaves behind for a view defined with fully-qualified names.
        warehouse, counts = prod
        result = hook.clone_for_incident("DEMO", "inc-00000000000000f1", tables=["RAW.ORDERS"])
        leaky = f'"{result.clone_database}".RAW.LEAKY'
        with warehouse.connect() as conn:
            conn.cursor().execute(f"create view {leaky} as select * from DEMO.RAW.ORDERS")
            assert hook.views_referencing(result.clone_database, "DEMO") == {"RAW.LEAKY": ["DEMO.RAW.ORDERS"]}
            assert hook.repoint_views(result.clone_database, "DEMO") == {"RAW.LEAKY": "repointed"}
            assert hook.views_referencing(result.clone_database, "DEMO") == {}
            conn.cursor().execute(f'delete from "{result.clone_database}".RAW.ORDERS where ORDER_ID <= 10')
            assert _count(conn, leaky) == counts["ORDERS"] - 10
            assert _count(conn, "DEMO.RAW.ORDERS") == counts["ORDERS"]

    def test_repoint_refuses_a_non_clone_database(self, hook: Any) -> None:
        with pytest.raises(ValueError, match="refusing to repoint views in 'DEMO'"):
            hook.repoint_views("DEMO", "OTHER")


class TestDropAndSweep:
    def test_drop_removes_every_object_of_the_clone(
        self, prod: tuple[Warehouse, dict[str, int]], hook: Any
    ) -> None:
        warehouse, _ = prod
        result = hook.clone_for_incident("DEMO", "inc-0000000000000101", tables=["RAW.CUSTOMERS"])
        with warehouse.connect() as conn:
            before = fingerprint(conn, "DEMO")
            assert _tables(conn, result.clone_database) == [("RAW", "CUSTOMERS")]
            # The stand-in has no DROP DATABASE; the hook then drops the clone's schemas ("emptied").
            assert hook.drop_clone(result.clone_database) in ("dropped", "emptied")
            assert _tables(conn, result.clone_database) == []
            assert hook.drop_clone(result.clone_database) == "already_empty"
            assert fingerprint(conn, "DEMO") == before

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("DEMO", id="prod"),
            pytest.param("demo", id="prod-lower"),
            pytest.param("demo__selfheal_inc_1__20260101T100000Z", id="clone-name-lower"),
            pytest.param('DEMO"; DROP DATABASE DEMO; --', id="injection"),
        ],
    )
    def test_drop_refuses_anything_but_a_clone(
        self, prod: tuple[Warehouse, dict[str, int]], hook: Any, name: str
    ) -> None:
        warehouse, counts = prod
        with pytest.raises(ValueError, match="refusing to drop"):
            hook.drop_clone(name)
        with warehouse.connect() as conn:
            assert _count(conn, "DEMO.RAW.ORDERS") == counts["ORDERS"]

    def test_sweep_drops_expired_clones_and_keeps_fresh_ones(
        self, prod: tuple[Warehouse, dict[str, int]], hook: Any
    ) -> None:
        from airflow_selfheal.core import clone_sql

        warehouse, counts = prod
        fresh = hook.clone_for_incident("DEMO", "inc-0000000000000201", tables=["RAW.PRODUCTS"])
        expired = clone_sql.clone_name(
            "DEMO", "inc-0000000000000202", created_at=datetime.now(timezone.utc) - timedelta(hours=3)
        )
        with warehouse.connect() as conn:
            cursor = conn.cursor()
            cursor.execute(clone_sql.create_database(expired))
            cursor.execute(clone_sql.create_schema((expired, "RAW")))
            cursor.execute(clone_sql.clone_table((expired, "RAW", "PRODUCTS"), ("DEMO", "RAW", "PRODUCTS")))
            assert _tables(conn, expired) == [("RAW", "PRODUCTS")]

            assert hook.sweep_clones(timedelta(hours=1)) == [expired]

            assert _tables(conn, expired) == []
            assert _count(conn, f'"{fresh.clone_database}".RAW.PRODUCTS') == counts["PRODUCTS"]
            assert _count(conn, "DEMO.RAW.PRODUCTS") == counts["PRODUCTS"]
        assert hook.sweep_clones(timedelta(hours=1)) == []

    def test_sweep_never_touches_prod(self, prod: tuple[Warehouse, dict[str, int]], hook: Any) -> None:
        warehouse, counts = prod
        hook.sweep_clones(timedelta(0), now=datetime.now(timezone.utc) + timedelta(days=365))
        with warehouse.connect() as conn:
            assert _count(conn, "DEMO.RAW.ORDERS") == counts["ORDERS"]
            assert len(_tables(conn, "DEMO")) == len(RAW_TABLES)
