"""Clones survive the warehouse's own dialect: views using Snowflake date functions are reproduced row for row.

The embedded stand-in reports view text in DuckDB's spelling (``date_diff('DAY', a, b)``, ``CASE`` for ``IFF``);
read as Snowflake that text still parses but means something else. The clone must come out complete anyway, with
views that return exactly prod's rows, and a real gap must still be refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dev.warehouse import running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

CONN_ID = "selfheal_clone_dialects"
SCHEMA = "DATES"
VIEWS = {
    "ORDER_AGES": """
        with orders as (
            select ID, PLACED, SHIPPED, AMOUNT_TEXT::number(10, 2) as AMOUNT, EXPRESS from DEMO.DATES.ORDERS
        ),
        aged as (
            select ID, datediff('day', PLACED, SHIPPED) as DAYS_TO_SHIP, dateadd('day', 30, PLACED) as DUE,
                   date_trunc('month', PLACED) as MONTH, iff(EXPRESS, 'express', 'standard') as SPEED, AMOUNT
            from orders
        )
        select * from aged
    """,
    "MONTHLY": """
        select MONTH, SPEED, count(*) as ORDERS, sum(AMOUNT) as AMOUNT, max(DAYS_TO_SHIP) as SLOWEST,
               datediff(day, min(DUE), max(DUE)) as DUE_SPREAD
        from DATES.ORDER_AGES
        group by MONTH, SPEED
    """,
    "LATE": "select ID, DAYS_TO_SHIP::varchar as DAYS from ORDER_AGES where DAYS_TO_SHIP > 3",
}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    with (
        running(tmp_path_factory.mktemp("dialect-warehouse")) as warehouse,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri(schema=SCHEMA))
        with warehouse.connect(schema=SCHEMA) as conn:
            cursor = conn.cursor()
            cursor.execute(f"create schema if not exists DEMO.{SCHEMA}")
            cursor.execute(
                f"create or replace table DEMO.{SCHEMA}.ORDERS "
                "(ID int, PLACED date, SHIPPED date, AMOUNT_TEXT varchar, EXPRESS boolean)"
            )
            cursor.execute(
                f"insert into DEMO.{SCHEMA}.ORDERS values "
                "(1, '2026-01-03', '2026-01-05', '10.50', true), (2, '2026-01-20', '2026-02-02', '7', false), "
                "(3, '2026-02-11', '2026-02-12', '99.99', true), (4, '2026-02-14', '2026-02-28', '0.01', false)"
            )
            for name, query in VIEWS.items():  # in dependency order: each reads the ones before it
                cursor.execute(f"create or replace view DEMO.{SCHEMA}.{name} as {query}")
        yield warehouse


@pytest.fixture(scope="module")
def hook(prod: Warehouse) -> Any:
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    return SnowflakeCloneHook(snowflake_conn_id=CONN_ID)


def _rows(conn: Any, fqn: str) -> list[tuple[Any, ...]]:
    return sorted(conn.cursor().execute(f"select * from {fqn}").fetchall(), key=repr)


def test_views_with_snowflake_date_functions_return_prods_rows_in_the_clone(
    prod: Warehouse, hook: Any
) -> None:
    with prod.connect() as conn:
        # The precondition that broke clones: the warehouse answers with its own dialect, not the text given.
        (text,) = (
            conn.cursor()
            .execute(
                "select VIEW_DEFINITION from DEMO.INFORMATION_SCHEMA.VIEWS where TABLE_NAME = 'ORDER_AGES'"
            )
            .fetchone()
        )
        assert "datediff('day'" not in text.lower()

    result = hook.clone_for_incident("DEMO", "inc-00000000000d1a1e", schemas=[SCHEMA])
    try:
        assert result.missing == ()
        assert result.verified is True
        assert result.views == tuple(f"{SCHEMA}.{name}" for name in sorted(VIEWS))
        with prod.connect() as conn:
            for name in VIEWS:
                clone_rows = _rows(conn, f'"{result.clone_database}".{SCHEMA}.{name}')
                assert clone_rows, name
                assert clone_rows == _rows(conn, f"DEMO.{SCHEMA}.{name}"), name
            # The views read the clone, not prod: a row added to the clone shows up only there.
            conn.cursor().execute(
                f'insert into "{result.clone_database}".{SCHEMA}.ORDERS values '
                "(5, '2026-03-01', '2026-03-31', '1', false)"
            )
            late = {row[0] for row in _rows(conn, f'"{result.clone_database}".{SCHEMA}.LATE')}
            assert 5 in late
            assert 5 not in {row[0] for row in _rows(conn, f"DEMO.{SCHEMA}.LATE")}
    finally:
        hook.drop_clone(result.clone_database)


def test_a_view_whose_input_is_outside_the_clone_is_still_refused(prod: Warehouse, hook: Any) -> None:
    with prod.connect() as conn:
        conn.cursor().execute("create schema if not exists DEMO.ELSEWHERE")
        conn.cursor().execute("create or replace table DEMO.ELSEWHERE.RATES (DAYS int, RATE number(5, 2))")
        conn.cursor().execute("insert into DEMO.ELSEWHERE.RATES values (2, 1.5)")
        conn.cursor().execute(
            f"create or replace view DEMO.{SCHEMA}.PRICED as select a.ID, r.RATE "
            f"from DEMO.{SCHEMA}.ORDER_AGES a join DEMO.ELSEWHERE.RATES r on r.DAYS = a.DAYS_TO_SHIP"
        )
    try:
        result = hook.clone_for_incident("DEMO", "inc-00000000000d1a1f", schemas=[SCHEMA])
        try:
            assert result.verified is False
            ((name, reason),) = result.missing
            assert name == f"{SCHEMA}.PRICED"
            assert reason.startswith("could not re-create the view in the clone")
            assert f"{SCHEMA}.ORDER_AGES" in result.views  # the rest of the clone is complete
        finally:
            hook.drop_clone(result.clone_database)
    finally:
        with prod.connect() as conn:
            conn.cursor().execute(f"drop view if exists DEMO.{SCHEMA}.PRICED")
