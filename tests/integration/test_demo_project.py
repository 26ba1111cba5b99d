"""The demo shop: raw loader, dbt project and drift scenarios, with real dbt on a private embedded warehouse."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev.loader import load_raw
from dev.scenarios import SCENARIOS, raw_fingerprint
from dev.warehouse import running

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dev" / "demo_project"
EXPECTED_ROWS = {"CUSTOMERS": 50, "PRODUCTS": 8, "ORDERS": 200}


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    message: str


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A private stand-in, and the environment that points the demo profile at it."""
    with running(tmp_path_factory.mktemp("wh")) as warehouse, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELFHEAL_WAREHOUSE_HOST", warehouse.host)
        patch.setenv("SELFHEAL_WAREHOUSE_PORT", str(warehouse.port))
        patch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        yield warehouse


@pytest.fixture(scope="module")
def dbt(
    tmp_path_factory: pytest.TempPathFactory, demo_warehouse: Warehouse
) -> Callable[..., list[NodeResult]]:
    """Run a dbt command in-process on the demo project; return one result per node."""
    from dbt.cli.main import dbtRunner

    target_path = tmp_path_factory.mktemp("dbt-target")
    log_path = tmp_path_factory.mktemp("dbt-logs")

    def invoke(*args: str) -> list[NodeResult]:
        assert os.environ["SELFHEAL_WAREHOUSE_PORT"] == str(demo_warehouse.port)
        result = dbtRunner().invoke(
            [
                *args,
                "--project-dir",
                str(PROJECT_DIR),
                "--profiles-dir",
                str(PROJECT_DIR),
                "--target-path",
                str(target_path),
                "--log-path",
                str(log_path),
                "--quiet",
            ]
        )
        if result.exception is not None:
            raise result.exception
        return [
            NodeResult(
                unique_id=item.node.unique_id,
                resource_type=str(item.node.resource_type),
                status=str(item.status),
                message=str(item.message or ""),
            )
            for item in result.result.results
        ]

    return invoke


@pytest.fixture(scope="module")
def loaded(demo_warehouse: Warehouse) -> dict[str, int]:
    with demo_warehouse.connect() as conn:
        return load_raw(conn)


@pytest.fixture(scope="module")
def first_build(loaded: dict[str, int], dbt: Callable[..., list[NodeResult]]) -> list[NodeResult]:
    return dbt("build")


def _by_status(results: list[NodeResult]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for result in results:
        grouped.setdefault(result.status, []).append(result.unique_id)
    return grouped


def _assert_all_green(results: list[NodeResult]) -> None:
    bad = [result for result in results if result.status not in ("success", "pass")]
    assert not bad, "\n".join(f"{r.unique_id}: {r.status} {r.message}" for r in bad)


def test_loader_loads_expected_rows(loaded: dict[str, int], demo_warehouse: Warehouse) -> None:
    assert {table: loaded[table] for table in EXPECTED_ROWS} == EXPECTED_ROWS
    assert set(loaded) == {"CUSTOMERS", "PRODUCTS", "ORDERS", "ORDER_ITEMS", "PAYMENTS"}
    assert loaded["ORDER_ITEMS"] >= loaded["ORDERS"]
    assert loaded["PAYMENTS"] >= loaded["ORDERS"]
    with demo_warehouse.connect() as conn:
        before = raw_fingerprint(conn)
        load_raw(conn, loaded_at=_loaded_at(conn))
        assert raw_fingerprint(conn) == before, "the same seed and load time must give the same raw data"


def _loaded_at(conn: Any) -> Any:
    return conn.cursor().execute("select max(_LOADED_AT) from DEMO.RAW.ORDERS").fetchone()[0]


def test_clean_build_passes(first_build: list[NodeResult]) -> None:
    _assert_all_green(first_build)
    models = [r.unique_id for r in first_build if r.resource_type == "model"]
    tests = [r.unique_id for r in first_build if r.resource_type == "test"]
    assert len(models) >= 8
    assert "model.selfheal_demo.fct_orders" in models
    assert any(".source_unique_raw_orders_" in test for test in tests)
    assert any(".accepted_values_stg_orders_status" in test for test in tests)
    assert any(".relationships_stg_orders_customer_id" in test for test in tests)
    assert "test.selfheal_demo.assert_order_payments_reconcile" in tests


def test_second_build_takes_incremental_path(
    first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]], demo_warehouse: Warehouse
) -> None:
    results = dbt("build")
    _assert_all_green(results)
    with demo_warehouse.connect() as conn:
        assert conn.cursor().execute("select count(*) from DEMO.ANALYTICS.FCT_ORDERS").fetchone() == (200,)


def test_source_freshness_passes_after_load(
    first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]]
) -> None:
    results = dbt("source", "freshness")
    assert [(r.unique_id, r.status) for r in results] == [("source.selfheal_demo.raw.orders", "pass")]


@dataclass(frozen=True)
class Expectation:
    command: tuple[str, ...]
    failing_node: str = ""  # substring of the unique_id that must be error/fail; empty: all green
    status: str = "error"
    message: tuple[str, ...] = ()  # substrings (case-insensitive) of that node's message


def _build(selector: str) -> tuple[str, ...]:
    return ("build", "--select", selector)


EXPECTATIONS = {
    "rename_column": Expectation(
        _build("source:raw.orders+"), "model.selfheal_demo.stg_orders", message=("customer_email",)
    ),
    "drop_column": Expectation(
        _build("source:raw.payments+"), "model.selfheal_demo.stg_payments", message=("payment_method",)
    ),
    "drop_unused_column": Expectation(_build("source:raw.customers+")),
    # The stand-in refuses to mix VARCHAR and numbers where Snowflake would cast implicitly (see DESIGN.md).
    "change_type": Expectation(
        _build("source:raw.payments+"),
        "model.selfheal_demo.int_order_payments",
        message=("amount", "varchar"),
    ),
    # `dbt run` reaches the model; `dbt build` stops earlier, at the source tests of the missing table.
    "drop_table": Expectation(
        ("run", "--select", "source:raw.products+"), "model.selfheal_demo.stg_products", message=("products",)
    ),
    "rename_table": Expectation(
        _build("source:raw.products+"), "_raw_products_PRODUCT_ID", message=("products",)
    ),
    "add_column": Expectation(_build("source:raw.orders+")),
    "duplicate_keys": Expectation(
        _build("source:raw.orders+"), ".source_unique_raw_orders_ORDER_ID", status="fail"
    ),
    "null_keys": Expectation(
        _build("source:raw.orders+"), ".source_not_null_raw_orders_CUSTOMER_ID", status="fail"
    ),
    "new_enum_value": Expectation(
        _build("source:raw.orders+"), ".accepted_values_stg_orders_status", status="fail"
    ),
    "stale_data": Expectation(
        ("source", "freshness", "--select", "source:raw.orders"), "source.selfheal_demo.raw.orders"
    ),
}


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTATIONS) == set(SCENARIOS)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in EXPECTATIONS])
def test_scenario_breaks_the_expected_node_and_resets_exactly(
    name: str,
    first_build: list[NodeResult],
    dbt: Callable[..., list[NodeResult]],
    demo_warehouse: Warehouse,
) -> None:
    scenario, expected = SCENARIOS[name], EXPECTATIONS[name]
    with demo_warehouse.connect() as conn:
        original = raw_fingerprint(conn)
        scenario.apply(conn)
        try:
            assert raw_fingerprint(conn) != original, "the scenario changed nothing"
            results = dbt(*expected.command)
        finally:
            assert scenario.reset(conn)
        assert raw_fingerprint(conn) == original

    if not expected.failing_node:
        _assert_all_green(results)
        return
    matching = [r for r in results if expected.failing_node in r.unique_id]
    assert matching, f"{expected.failing_node} did not run: {_by_status(results)}"
    assert {r.status for r in matching} == {expected.status}, matching
    for result in matching:
        assert all(part in result.message.lower() for part in expected.message), result
    failed = _by_status(results)
    assert sorted(failed.get("error", []) + failed.get("fail", [])) == sorted(r.unique_id for r in matching)
