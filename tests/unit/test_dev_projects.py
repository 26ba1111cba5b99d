"""The dev project registry, raw layouts, scenario records and oracles: the parts that need no warehouse."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_selfheal.core.triage import FailureClass
from dev import airflow_env
from dev.loader import (
    MIN_TRIP_SECONDS,
    RIDES_RAW,
    SHOP_RAW,
    RawLayout,
    create_table_sql,
    generate_rides_rows,
    trip_charges_cents,
)
from dev.oracles import expected_values
from dev.project_repo import git, git_copy
from dev.projects import PROJECTS, RIDES, SHOP, get_project, project_for_dir
from dev.scenarios import OUTCOMES, SCENARIOS, Scenario, column_as_text, registry
from dev.warehouse import Warehouse

LOADED_AT = datetime(2025, 6, 1, 12, 0, 0)
# Both projects carry these, so a benchmark can run the same scenario on each.
COMMON_SCENARIOS = {
    "rename_column",
    "change_type",
    "drop_unused_column",
    "drop_column",
    "rename_table",
    "drop_table",
    "duplicate_keys",
    "null_keys",
    "new_enum_value",
    "add_column",
}


class TestRegistry:
    def test_holds_the_shop_and_rides(self) -> None:
        assert set(PROJECTS) == {"shop", "rides"}
        assert SHOP.scenarios is SCENARIOS
        assert (SHOP.database, SHOP.raw_schema, SHOP.target_schema, SHOP.baseline_name) == (
            "DEMO",
            "RAW",
            "ANALYTICS",
            "shop_raw",
        )
        assert (RIDES.database, RIDES.raw_schema, RIDES.target_schema, RIDES.baseline_name) == (
            "RIDES",
            "LANDING",
            "CORE",
            "rides_landing",
        )

    @pytest.mark.parametrize("key", [pytest.param(key, id=key) for key in PROJECTS])
    def test_matches_the_dbt_project_on_disk(self, key: str) -> None:
        project = PROJECTS[key]
        dbt_project = yaml.safe_load((project.project_dir / "dbt_project.yml").read_text())
        assert (dbt_project["name"], dbt_project["profile"]) == (
            project.dbt_project_name,
            project.profile_name,
        )
        profile = yaml.safe_load((project.project_dir / "profiles.yml").read_text())[project.profile_name]
        output = profile["outputs"][profile["target"]]
        assert output["schema"] == project.target_schema
        assert f"'{project.database}'" in output["database"], (
            "the profile's default database is the project's"
        )
        assert project_for_dir(project.project_dir) is project

    def test_unknown_project_names_the_known_ones(self) -> None:
        with pytest.raises(KeyError, match="shop, rides"):
            get_project("jaffle")
        with pytest.raises(KeyError, match="known projects"):
            registry("jaffle")
        assert project_for_dir(Path("/nowhere")) is None

    def test_both_projects_carry_the_common_scenarios(self) -> None:
        assert COMMON_SCENARIOS <= set(SHOP.scenarios)
        assert COMMON_SCENARIOS <= set(RIDES.scenarios)
        assert "stale_source" in RIDES.scenarios
        assert "stale_data" in SHOP.scenarios

    @pytest.mark.parametrize("key", [pytest.param(key, id=key) for key in PROJECTS])
    def test_every_scenario_records_a_valid_expectation(self, key: str) -> None:
        project = PROJECTS[key]
        classes = {failure_class.value for failure_class in FailureClass}
        for scenario in project.scenarios.values():
            assert scenario.raw is project.raw, scenario.name
            assert scenario.expected_outcome in OUTCOMES
            assert (scenario.expected_class is None) == (scenario.expected_outcome == "no_incident"), (
                scenario.name
            )
            assert scenario.expected_class is None or scenario.expected_class in classes, scenario.name
            assert all(node.split(".")[1] == project.dbt_project_name for node in scenario.failing_nodes)
            assert scenario.dbt_command[0] in ("build", "source"), scenario.name


class TestRawLayout:
    def test_shop_ddl_is_unchanged(self) -> None:
        assert create_table_sql("PRODUCTS") == (
            "create or replace table DEMO.RAW.PRODUCTS (\n    PRODUCT_ID NUMBER(38,0),\n    NAME VARCHAR,\n"
            "    CATEGORY VARCHAR,\n    PRICE NUMBER(10,2)\n)"
        )
        assert SHOP_RAW.qualified("ORDERS", "RAW_SCENARIO_BACKUP") == "DEMO.RAW_SCENARIO_BACKUP.ORDERS"

    def test_unknown_table_names_the_known_ones(self) -> None:
        with pytest.raises(KeyError, match="TRIPS"):
            RIDES_RAW.columns("RIDES")

    def test_records_are_keyed_by_column(self) -> None:
        layout = RawLayout("D", "S", {"T": {"A": "NUMBER", "B": "VARCHAR"}})
        assert layout.records({"T": [(1, "x")]}, "T") == [{"A": 1, "B": "x"}]


class TestScenario:
    def test_type_change_keeps_the_column_order(self) -> None:
        assert column_as_text(SHOP_RAW, "PAYMENTS", "AMOUNT") == (
            "create or replace table DEMO.RAW.PAYMENTS as select PAYMENT_ID, ORDER_ID, PAYMENT_METHOD, "
            "to_varchar(AMOUNT) as AMOUNT, CREATED_AT from DEMO.RAW.PAYMENTS"
        )
        assert RIDES.scenarios["change_type"].statements == (
            "create or replace table RIDES.LANDING.TRIP_CHARGES as select CHARGE_ID, TRIP_ID, CHARGE_TYPE, "
            "to_varchar(AMOUNT_CENTS) as AMOUNT_CENTS, CURRENCY, CHARGED_AT from RIDES.LANDING.TRIP_CHARGES",
        )
        with pytest.raises(KeyError, match="AMOUNT_CENTS"):
            column_as_text(RIDES_RAW, "TRIP_CHARGES", "AMOUNT")

    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            pytest.param({"tables": ("NOPE",)}, "not raw tables of RIDES.LANDING", id="unknown-table"),
            pytest.param({"expected_outcome": "fixed"}, "expected_outcome must be one of", id="bad-outcome"),
            pytest.param({"failing_nodes": ()}, "together, or neither", id="class-without-node"),
            pytest.param({"oracles_after": "dirty"}, "oracles_after must be one of", id="bad-oracle-state"),
        ],
    )
    def test_bad_records_are_refused(self, changes: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            replace(RIDES.scenarios["rename_column"], **changes)

    def test_failing_node_matching(self) -> None:
        model = RIDES.scenarios["rename_column"]
        assert model.is_failing_node("model.rides.stg_app__trips")
        assert not model.is_failing_node("model.rides.stg_app__trips_v2")
        test = RIDES.scenarios["new_enum_value"]
        assert test.is_failing_node(
            "test.rides.accepted_values_stg_fleet__bikes_bike_type__classic__cargo.1a2b3c"
        )
        assert not test.is_failing_node("test.rides.accepted_values_stg_fleet__members_plan.1a2b3c")
        assert not Scenario("x", "x", (), ()).is_failing_node("model.selfheal_demo.stg_orders")


class TestRidesRows:
    def test_deterministic_and_only_sync_times_follow_the_clock(self) -> None:
        rows = generate_rides_rows(loaded_at=LOADED_AT)
        assert rows == generate_rides_rows(loaded_at=LOADED_AT)
        assert rows != generate_rides_rows(seed=12, loaded_at=LOADED_AT)
        later = generate_rides_rows(loaded_at=datetime(2025, 6, 2))
        for table, table_rows in rows.items():
            columns = RIDES_RAW.columns(table)
            for before, after in zip(table_rows, later[table], strict=True):
                changed = {column for column, a, b in zip(columns, before, after, strict=True) if a != b}
                assert changed <= {"_SYNCED_AT"}, (table, changed)

    def test_false_starts_are_never_charged(self) -> None:
        rows = generate_rides_rows(loaded_at=LOADED_AT)
        trips = {trip["TRIP_ID"]: trip for trip in RIDES_RAW.records(rows, "TRIPS")}
        false_starts = {
            trip_id
            for trip_id, trip in trips.items()
            if (trip["ENDED_AT"] - trip["STARTED_AT"]).total_seconds() < MIN_TRIP_SECONDS
        }
        assert false_starts, "the data must exercise the minimum trip length"
        charged = {charge["TRIP_ID"] for charge in RIDES_RAW.records(rows, "TRIP_CHARGES")}
        assert charged <= set(trips)
        assert not charged & false_starts

    @pytest.mark.parametrize(
        ("plan", "bike_type", "seconds", "out_of_zone", "expected"),
        [
            pytest.param(
                "monthly", "classic", 61, False, {"unlock": 100, "ride_time": 30}, id="two-started-minutes"
            ),
            pytest.param("annual", "electric", 25 * 60, False, {}, id="annual-free-minutes"),
            pytest.param(
                "annual", "cargo", 31 * 60, True, {"ride_time": 35, "out_of_zone": 250}, id="annual-over"
            ),
            pytest.param("day_pass", "electric", 59, True, {}, id="false-start"),
        ],
    )
    def test_tariff(
        self, plan: str, bike_type: str, seconds: int, out_of_zone: bool, expected: dict[str, int]
    ) -> None:
        assert (
            trip_charges_cents(
                plan=plan, bike_type=bike_type, duration_seconds=seconds, out_of_zone=out_of_zone
            )
            == expected
        )


class TestOracles:
    def test_rides_oracles_state_the_truth_whatever_the_delivery(self) -> None:
        rows = generate_rides_rows(loaded_at=LOADED_AT)
        clean = expected_values(RIDES.oracles, rows)
        redelivered = {**rows, "TRIPS": rows["TRIPS"] + rows["TRIPS"][::20]}
        assert expected_values(RIDES.oracles, redelivered) == clean
        (total,) = clean["finance_total_revenue"][0]
        assert total == Decimal(sum(row[3] for row in rows["TRIP_CHARGES"])) / 100
        assert sum(plan[3] for plan in clean["finance_revenue_by_plan"]) == total
        assert sum(plan[2] for plan in clean["finance_revenue_by_plan"]) == clean["core_trip_count"][0][0]

    def test_shop_oracles_count_every_order_once(self) -> None:
        rows = SHOP.rows(loaded_at=LOADED_AT)
        values = expected_values(SHOP.oracles, rows)
        assert values["core_order_count"] == [(200,)]
        assert 0 < values["finance_total_revenue"][0][0] < sum(row[3] for row in rows["PAYMENTS"])

    def test_queries_name_the_project_marts(self) -> None:
        for project in PROJECTS.values():
            for oracle in project.oracles:
                assert f"from {project.marts}." in oracle.query(project.marts), oracle.name


class TestHelpers:
    @pytest.mark.parametrize(
        ("source", "folder"),
        [
            pytest.param(SHOP.project_dir, "shop_dbt", id="shop"),
            pytest.param(RIDES.project_dir, "rides_dbt", id="rides"),
        ],
    )
    def test_git_copy_folder_follows_the_project(self, tmp_path: Path, source: Path, folder: str) -> None:
        project, origin = git_copy(tmp_path, source)
        assert project == tmp_path / folder
        assert (project / "dbt_project.yml").read_text() == (source / "dbt_project.yml").read_text()
        assert git(project, "rev-parse", "HEAD") == git(origin, "rev-parse", "main")

    def test_airflow_environ_points_at_the_chosen_project(self, tmp_path: Path) -> None:
        warehouse = Warehouse("127.0.0.1", 1, tmp_path)
        default = airflow_env.airflow_environ(tmp_path, warehouse)
        assert default["SELFHEAL_DBT_PROJECT_DIR"] == str(airflow_env.DEMO_PROJECT)
        rides = airflow_env.airflow_environ(tmp_path, warehouse, project_dir=airflow_env.RIDES_PROJECT)
        assert rides["SELFHEAL_DBT_PROJECT_DIR"] == rides["DBT_PROFILES_DIR"] == str(RIDES.project_dir)
