"""The rides project: raw loader, dbt project, oracles and drift scenarios, with real dbt on the session warehouse.

Nothing is mocked: the rows go through the real connector into the embedded stand-in, dbt-snowflake builds the
project there, and each scenario's error is classified by the package's real triage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.triage import FailureClass, classify
from dev.projects import RIDES
from dev.scenarios import OUTCOMES, raw_fingerprint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

EXPECTED_ROWS = {"STATIONS": 12, "BIKES": 40, "MEMBERS": 60, "TRIPS": 300}


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    resource_type: str
    status: str
    message: str
    test_name: str | None


@pytest.fixture(scope="module")
def conn(warehouse: Warehouse) -> Iterator[Any]:
    with RIDES.connect(warehouse) as connection:
        yield connection


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory, warehouse: Warehouse) -> Callable[..., list[NodeResult]]:
    """Run a dbt command in-process on the rides project; return one result per node."""
    from dbt.cli.main import dbtRunner

    target_path = tmp_path_factory.mktemp("rides-target")
    log_path = tmp_path_factory.mktemp("rides-logs")

    def invoke(*args: str) -> list[NodeResult]:
        # The profile reads host and port from the environment that tests/conftest.py set for this session.
        assert os.environ["SELFHEAL_WAREHOUSE_PORT"] == str(warehouse.port)
        result = dbtRunner().invoke(
            [
                *args,
                "--project-dir",
                str(RIDES.project_dir),
                "--profiles-dir",
                str(RIDES.project_dir),
                "--target-path",
                str(target_path),
                "--log-path",
                str(log_path),
                "--quiet",
            ]
        )
        if result.exception is not None:
            raise result.exception
        results = []
        node_results = getattr(result.result, "results", None)
        assert node_results is not None, f"dbt {' '.join(args)} returned no node results"
        for item in node_results:
            metadata = getattr(item.node, "test_metadata", None)
            results.append(
                NodeResult(
                    unique_id=item.node.unique_id,
                    resource_type=str(item.node.resource_type),
                    status=str(item.status),
                    message=str(item.message or ""),
                    test_name=None if metadata is None else metadata.name,
                )
            )
        return results

    return invoke


@pytest.fixture(scope="module")
def loaded(conn: Any) -> dict[str, int]:
    return RIDES.load(conn)


@pytest.fixture(scope="module")
def first_build(loaded: dict[str, int], dbt: Callable[..., list[NodeResult]]) -> list[NodeResult]:
    return dbt("build", "--full-refresh")


def _failed(results: list[NodeResult]) -> list[NodeResult]:
    return [result for result in results if result.status in ("error", "fail", "runtime error")]


def _assert_all_green(results: list[NodeResult]) -> None:
    bad = [result for result in results if result.status not in ("success", "pass")]
    assert not bad, "\n".join(f"{r.unique_id}: {r.status} {r.message}" for r in bad)


def _synced_at(conn: Any) -> Any:
    return conn.cursor().execute(f"select max(_SYNCED_AT) from {RIDES.raw.qualified('TRIPS')}").fetchone()[0]


def test_loader_loads_deterministic_rows(loaded: dict[str, int], conn: Any) -> None:
    assert {table: loaded[table] for table in EXPECTED_ROWS} == EXPECTED_ROWS
    assert set(loaded) == set(RIDES.raw_tables)
    assert loaded["DOCK_EVENTS"] == 2 * loaded["TRIPS"]
    assert loaded["TRIP_CHARGES"] > 0
    before = raw_fingerprint(conn, raw=RIDES.raw)
    RIDES.load(conn, loaded_at=_synced_at(conn))
    assert raw_fingerprint(conn, raw=RIDES.raw) == before, (
        "the same seed and sync time must give the same rows"
    )
    RIDES.load(conn, seed=RIDES.default_seed + 1, loaded_at=_synced_at(conn))
    try:
        assert raw_fingerprint(conn, raw=RIDES.raw) != before, "another seed must give other rows"
    finally:
        RIDES.load(conn, loaded_at=_synced_at(conn))
    assert raw_fingerprint(conn, raw=RIDES.raw) == before


def test_clean_build_passes(first_build: list[NodeResult]) -> None:
    _assert_all_green(first_build)
    models = {r.unique_id for r in first_build if r.resource_type == "model"}
    tests = {r.unique_id for r in first_build if r.resource_type == "test"}
    assert len(models) >= 10
    assert {
        "model.rides.fct_trips",
        "model.rides.fct_daily_revenue",
        "model.rides.stg_fleet__bikes",
    } <= models
    assert 30 <= len(tests) <= 45
    # The locally written package-style generic tests, the built-in ones and the singular ones all ran.
    for prefix in (
        "test.rides.expression_is_true_",
        "test.rides.accepted_range_",
        "test.rides.unique_combination_of_columns_",
        "test.rides.relationships_",
        "test.rides.accepted_values_",
        "test.rides.source_unique_",
        "test.rides.assert_revenue_reconciles_with_trips",
    ):
        assert any(test.startswith(prefix) for test in tests), prefix


def test_source_freshness_passes_after_load(
    first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]]
) -> None:
    results = dbt("source", "freshness")
    # Only the sources that declare freshness are checked.
    assert sorted((r.unique_id, r.status) for r in results) == [
        ("source.rides.app.trips", "pass"),
        ("source.rides.fleet.dock_events", "pass"),
    ]


def test_oracles_match_the_generated_rows(first_build: list[NodeResult], conn: Any) -> None:
    assert RIDES.check_oracles(conn) == []
    names = {oracle.name for oracle in RIDES.oracles}
    assert {"finance_total_revenue", "core_trip_count", "core_active_members"} <= names


def test_second_build_takes_the_incremental_path(
    first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]], conn: Any
) -> None:
    results = dbt("build", "--select", "fct_trips+")
    _assert_all_green(results)
    assert RIDES.check_oracles(conn) == [], "an incremental run must neither duplicate nor lose trips"


def test_oracles_catch_an_unrepaired_duplicate_batch(
    first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]], conn: Any
) -> None:
    """Run the models without their tests on re-delivered trips: the oracles must see the double counting."""
    scenario = RIDES.scenarios["duplicate_keys"]
    scenario.apply(conn)
    try:
        _assert_all_green(dbt("run", "--select", "source:app.trips+"))
        mismatched = {mismatch.name for mismatch in RIDES.check_oracles(conn)}
    finally:
        assert scenario.reset(conn)
        _assert_all_green(dbt("run", "--select", "source:app.trips+", "--full-refresh"))
    assert {"finance_total_revenue", "core_trip_count"} <= mismatched
    assert RIDES.check_oracles(conn) == []


def test_every_scenario_records_its_expectation() -> None:
    classes = {failure_class.value for failure_class in FailureClass}
    for scenario in RIDES.scenarios.values():
        assert scenario.raw is RIDES.raw, scenario.name
        assert scenario.expected_outcome in OUTCOMES, scenario.name
        assert scenario.dbt_command, scenario.name
        if scenario.expected_class is None:
            assert scenario.expected_outcome == "no_incident", scenario.name
        else:
            assert scenario.expected_class in classes, scenario.name
            assert all(node.split(".")[1] == RIDES.dbt_project_name for node in scenario.failing_nodes)


@pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in RIDES.scenarios])
def test_scenario_breaks_the_expected_node_and_resets_exactly(
    name: str, first_build: list[NodeResult], dbt: Callable[..., list[NodeResult]], conn: Any
) -> None:
    scenario = RIDES.scenarios[name]
    original = raw_fingerprint(conn, raw=RIDES.raw)
    scenario.apply(conn)
    try:
        assert raw_fingerprint(conn, raw=RIDES.raw) != original, "the scenario changed nothing"
        results = dbt(*scenario.dbt_command)
    finally:
        assert scenario.reset(conn)
    assert raw_fingerprint(conn, raw=RIDES.raw) == original
    assert results, f"{scenario.dbt_command} selected nothing"

    failed = _failed(results)
    if scenario.expected_class is None:
        _assert_all_green(results)
        return
    assert sorted(r.unique_id for r in failed if scenario.is_failing_node(r.unique_id)) == sorted(
        r.unique_id for r in failed
    ), f"unexpected failures: {[(r.unique_id, r.message) for r in failed]}"
    for node in scenario.failing_nodes:
        assert any(scenario.is_failing_node(r.unique_id) and r.unique_id.startswith(node) for r in failed), (
            f"{node} did not fail: {[(r.unique_id, r.status) for r in results]}"
        )
    for result in failed:
        triage = classify(
            result.message,
            resource_type=result.resource_type,
            test_name=result.test_name,
            status=result.status,
        )
        assert triage.failure_class.value == scenario.expected_class, (result.unique_id, result.message)
