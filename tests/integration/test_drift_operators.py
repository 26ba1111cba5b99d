"""Drift operators on the embedded warehouse: every scenario from dev/ applied through real DDL/DML."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.models import Connection

from dev.receivers import Receiver, http_receiver
from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

CONN_ID = "selfheal_warehouse"


@pytest.fixture(scope="module")
def raw(warehouse: Warehouse, demo_manifest: Path) -> Warehouse:
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    return warehouse


@pytest.fixture
def baseline_name() -> str:
    return f"shop_raw_{uuid.uuid4().hex[:8]}"


def _context() -> dict[str, Any]:
    return {"run_id": "manual__test"}


def _snapshot(baseline: str, manifest: Path, **kwargs: Any) -> dict[str, Any]:
    from airflow_selfheal.operators.drift import SchemaSnapshotOperator

    operator = SchemaSnapshotOperator(
        task_id="snapshot",
        baseline_name=baseline,
        snowflake_conn_id=CONN_ID,
        manifest_path=str(manifest),
        **kwargs,
    )
    return operator.execute(_context())  # type: ignore[arg-type]


def _check(baseline: str, manifest: Path, **kwargs: Any) -> dict[str, Any]:
    from airflow_selfheal.operators.drift import SchemaDriftCheckOperator

    operator = SchemaDriftCheckOperator(
        task_id="check",
        baseline_name=baseline,
        snowflake_conn_id=CONN_ID,
        manifest_path=str(manifest),
        **kwargs,
    )
    return operator.execute(_context())  # type: ignore[arg-type]


def _events(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            e["kind"],
            e["table"],
            e.get("column"),
            e.get("new_column") or e.get("new_table") or e.get("new_type"),
        )
        for e in report["events"]
    ]


EXPECTED = {
    "rename_column": [("column_renamed", "RAW.ORDERS", "CUSTOMER_EMAIL", "EMAIL_ADDRESS")],
    "drop_column": [("column_removed", "RAW.PAYMENTS", "PAYMENT_METHOD", None)],
    "drop_unused_column": [("column_removed", "RAW.CUSTOMERS", "LEGACY_SEGMENT", None)],
    # Snowflake's information_schema spells VARCHAR as TEXT, and events keep the warehouse's spelling.
    "change_type": [("column_type_changed", "RAW.PAYMENTS", "AMOUNT", "TEXT")],
    "drop_table": [("table_removed", "RAW.PRODUCTS", None, None)],
    "rename_table": [("table_renamed", "RAW.PRODUCTS", None, "RAW.PRODUCT_CATALOG")],
    "add_column": [("column_added", "RAW.ORDERS", "DISCOUNT_CODE", "TEXT")],
    "duplicate_keys": [],
    "null_keys": [],
    "new_enum_value": [],
    "stale_data": [],
}


class TestScenarios:
    def test_every_scenario_is_covered(self) -> None:
        from dev.scenarios import SCENARIOS

        assert sorted(SCENARIOS) == sorted(EXPECTED)

    @pytest.mark.parametrize("name", [pytest.param(name, id=name) for name in EXPECTED])
    def test_scenario_gives_exact_events(
        self, raw: Warehouse, demo_manifest: Path, baseline_name: str, name: str
    ) -> None:
        from dev.scenarios import SCENARIOS

        first = _snapshot(baseline_name, demo_manifest)
        assert first["accepted"] is True
        scenario = SCENARIOS[name]
        with raw.connect() as conn:
            scenario.apply(conn)
        try:
            report = _check(baseline_name, demo_manifest, policy="report")
        finally:
            with raw.connect() as conn:
                scenario.reset(conn)
        assert _events(report) == EXPECTED[name]
        assert report["status"] == ("drift_detected" if EXPECTED[name] else "clean")
        assert report["baseline_version"] == first["version"]
        assert _check(baseline_name, demo_manifest)["status"] == "clean"

    def test_rename_message_and_confidence(
        self, raw: Warehouse, demo_manifest: Path, baseline_name: str
    ) -> None:
        from dev.scenarios import SCENARIOS

        _snapshot(baseline_name, demo_manifest)
        with raw.connect() as conn:
            SCENARIOS["rename_column"].apply(conn)
        try:
            report = _check(baseline_name, demo_manifest)
        finally:
            with raw.connect() as conn:
                SCENARIOS["rename_column"].reset(conn)
        (event,) = report["events"]
        assert event["message"].startswith(
            "raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS (confidence"
        )
        assert event["confidence"] >= 0.5
        assert report["headline"] == "drift detected (1 change)"


class TestSnapshot:
    def test_one_metadata_query_per_database_whatever_the_table_count(
        self, raw: Warehouse, demo_manifest: Path
    ) -> None:
        from airflow_selfheal.hooks.schemas import capture_snapshot
        from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

        targets = [("DEMO", "RAW", t) for t in ("ORDERS", "CUSTOMERS")]
        small_hook = SelfhealSnowflakeHook(snowflake_conn_id=CONN_ID)
        small = capture_snapshot(small_hook, targets)
        with raw.connect() as conn:
            cursor = conn.cursor()
            cursor.execute("create schema if not exists DEMO.WIDE")
            for index in range(30):
                cursor.execute(f"create or replace table DEMO.WIDE.T{index:02d} (ID int, NAME varchar)")
        wide_targets = [*targets, *(("DEMO", "WIDE", f"T{index:02d}") for index in range(30))]
        wide_hook = SelfhealSnowflakeHook(snowflake_conn_id=CONN_ID)
        wide = capture_snapshot(wide_hook, wide_targets)
        assert len(wide.tables) == len(small.tables) + 30
        assert small_hook.metadata_queries == wide_hook.metadata_queries == 1

    def test_falls_back_to_show_columns_when_refused(self, raw: Warehouse) -> None:
        """Snowflake's "too much data" refusal cannot happen on the stand-in, so it is simulated here only."""
        from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

        class RefusingHook(SelfhealSnowflakeHook):
            def _query(self, conn: Any, sql: str, parameters: Any, *, as_dict: bool = False) -> list[Any]:
                if "INFORMATION_SCHEMA.COLUMNS" in sql:
                    self.metadata_queries += 1
                    raise RuntimeError(
                        "090030 (22000): Information schema query returned too much data. "
                        "Please repeat query with more selective predicates."
                    )
                return super()._query(conn, sql, parameters, as_dict=as_dict)

        expected, source = SelfhealSnowflakeHook(snowflake_conn_id=CONN_ID).fetch_columns("DEMO", ["RAW"])
        assert source == "information_schema"
        rows, source = RefusingHook(snowflake_conn_id=CONN_ID).fetch_columns("DEMO", ["RAW"])
        assert source == "show_columns"

        def key(row: dict[str, Any]) -> tuple[Any, ...]:
            return (row["TABLE_NAME"], row["ORDINAL_POSITION"], row["COLUMN_NAME"], row["IS_NULLABLE"])

        assert sorted(map(key, rows)) == sorted(map(key, expected))

    def test_changed_schema_is_recorded_but_not_accepted(
        self, raw: Warehouse, demo_manifest: Path, baseline_name: str
    ) -> None:
        from airflow_selfheal.records.baselines import BaselineStore
        from dev.scenarios import SCENARIOS

        first = _snapshot(baseline_name, demo_manifest)
        assert _snapshot(baseline_name, demo_manifest)["unchanged"] is True
        with raw.connect() as conn:
            SCENARIOS["add_column"].apply(conn)
        try:
            second = _snapshot(baseline_name, demo_manifest)
            assert second["accepted"] is False
            assert BaselineStore(baseline_name).current()[0] == first["version"]  # type: ignore[index]
            third = _snapshot(baseline_name, demo_manifest, accept="always")
            assert third["accepted"] is True
            history = BaselineStore(baseline_name).history()
            assert [r["version"] for r in history] == [first["version"], third["version"]]
        finally:
            with raw.connect() as conn:
                SCENARIOS["add_column"].reset(conn)


class TestBadInput:
    def test_no_baseline(self, raw: Warehouse, demo_manifest: Path, baseline_name: str) -> None:
        report = _check(baseline_name, demo_manifest)
        assert report["status"] == "no_baseline"
        assert report["headline"] == "no baseline"

    def test_declared_but_never_loaded_table(self, raw: Warehouse, baseline_name: str) -> None:
        from airflow_selfheal.operators.drift import SchemaDriftCheckOperator

        tables = ["DEMO.RAW.ORDERS", "DEMO.RAW.REFUNDS", "DEMO.NO_SUCH_SCHEMA.THING"]
        operator = SchemaDriftCheckOperator(
            task_id="check", baseline_name=baseline_name, snowflake_conn_id=CONN_ID, tables=tables
        )
        report = operator.execute(_context())  # type: ignore[arg-type]
        assert report["status"] == "no_baseline"
        assert sorted((e["kind"], e["table"]) for e in report["events"]) == [
            ("table_not_found", "NO_SUCH_SCHEMA.THING"),
            ("table_not_found", "RAW.REFUNDS"),
        ]

    def test_unknown_connection_is_named(self, demo_manifest: Path, baseline_name: str) -> None:
        from airflow_selfheal.operators.drift import SchemaDriftCheckOperator

        operator = SchemaDriftCheckOperator(
            task_id="check",
            baseline_name=baseline_name,
            snowflake_conn_id="no_such_conn",
            manifest_path=str(demo_manifest),
        )
        with pytest.raises(Exception, match="no_such_conn"):
            operator.execute(_context())  # type: ignore[arg-type]

    def test_bad_arguments_fail_at_parse_time(self) -> None:
        from airflow_selfheal.operators.drift import SchemaDriftCheckOperator, SchemaSnapshotOperator

        with pytest.raises(ValueError, match="policy must be one of"):
            SchemaDriftCheckOperator(task_id="c", baseline_name="b", tables=["A.B.C"], policy="explode")
        with pytest.raises(ValueError, match="give `manifest_path`"):
            SchemaDriftCheckOperator(task_id="c2", baseline_name="b")
        with pytest.raises(ValueError, match="accept must be one of"):
            SchemaSnapshotOperator(task_id="s", baseline_name="b", tables=["A.B.C"], accept="sometimes")

    def test_fail_policy_fails_the_task_with_the_changes(
        self, raw: Warehouse, demo_manifest: Path, baseline_name: str
    ) -> None:
        from airflow.exceptions import AirflowException

        from dev.scenarios import SCENARIOS

        _snapshot(baseline_name, demo_manifest)
        with raw.connect() as conn:
            SCENARIOS["drop_column"].apply(conn)
        try:
            with pytest.raises(AirflowException, match="raw.payments lost column PAYMENT_METHOD"):
                _check(baseline_name, demo_manifest, policy="fail")
        finally:
            with raw.connect() as conn:
                SCENARIOS["drop_column"].reset(conn)


class TestNotifications:
    @pytest.fixture
    def receiver(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
        with http_receiver() as rec:
            slack = Connection(
                conn_id="slack_drift", conn_type="slackwebhook", password=f"{rec.url}/services/T/B/C"
            )
            pagerduty = Connection(
                conn_id="pd_drift", conn_type="pagerduty_events", host=rec.url, password="k" * 32
            )
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_DRIFT", slack.as_json())
            monkeypatch.setenv("AIRFLOW_CONN_PD_DRIFT", pagerduty.as_json())
            yield rec

    def test_once_per_unique_set_of_changes(
        self, raw: Warehouse, demo_manifest: Path, baseline_name: str, receiver: Receiver
    ) -> None:
        from dev.scenarios import SCENARIOS

        def check() -> dict[str, Any]:
            return _check(
                baseline_name, demo_manifest, slack_conn_id="slack_drift", pagerduty_conn_id="pd_drift"
            )

        _snapshot(baseline_name, demo_manifest)
        with raw.connect() as conn:
            SCENARIOS["rename_column"].apply(conn)
        try:
            first = check()
            second = check()
            with raw.connect() as conn:
                SCENARIOS["add_column"].apply(conn)
            try:
                third = check()
            finally:
                with raw.connect() as conn:
                    SCENARIOS["add_column"].reset(conn)
        finally:
            with raw.connect() as conn:
                SCENARIOS["rename_column"].reset(conn)

        assert first["notification"]["channels"] == {"slack": "sent", "pagerduty": "sent"}
        assert second["notification"]["duplicate"] is True
        assert third["notification"]["channels"] == {"slack": "sent", "pagerduty": "sent"}
        assert len(receiver.deliveries) == 4
        event = next(d for d in receiver.deliveries if d.path == "/v2/enqueue").json()
        assert event["payload"]["severity"] == "warning"
        assert "CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS" in str(event["payload"]["custom_details"])
        slack_text = next(d for d in receiver.deliveries if d.path.startswith("/services")).json()["text"]
        assert "drift detected (1 change)" in slack_text
