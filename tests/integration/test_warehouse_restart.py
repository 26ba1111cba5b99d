"""Restarts of the embedded stand-in keep declared lengths, and a lossy table rename is still paired.

Real components: a fakesnow server started and stopped twice on loopback (its own data directory and port),
the real Snowflake connector through the package's hook, and the package's snapshot and diff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.core.drift import diff_snapshots
from airflow_selfheal.hooks.schemas import capture_snapshot
from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook
from dev.warehouse import GLOBAL_METADATA_FILE, Warehouse, running

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration

DATABASE = "RIDES"
CONN_ID = "restart_wh"
TARGETS = [(DATABASE, "RAW", "TRIPS"), (DATABASE, "RAW", "STATIONS")]
DDL = (
    "create schema if not exists RIDES.RAW",
    "create or replace table RIDES.RAW.TRIPS (TRIP_ID varchar(16), STATION_CODE varchar(8), "
    "AMOUNT_CENTS number(10,0), NOTE varchar, STARTED_AT timestamp_ntz)",
    "create or replace table RIDES.RAW.STATIONS (CODE char(8), NAME varchar(64), CAPACITY number(5,0))",
    "insert into RIDES.RAW.TRIPS values ('t1', 'S1', 250, 'ok', '2025-01-01 08:00:00')",
)


def _hook(warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch) -> SelfhealSnowflakeHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri(database=DATABASE))
    return SelfhealSnowflakeHook(snowflake_conn_id=CONN_ID)


def _lengths(warehouse: Warehouse) -> dict[str, int | None]:
    with warehouse.connect(DATABASE) as conn:
        rows = (
            conn.cursor()
            .execute(
                "select TABLE_NAME, COLUMN_NAME, CHARACTER_MAXIMUM_LENGTH from RIDES.INFORMATION_SCHEMA.COLUMNS "
                "where TABLE_SCHEMA = 'RAW' and DATA_TYPE = 'TEXT'"
            )
            .fetchall()
        )
    return {f"{table}.{column}": length for table, column, length in rows}


def test_declared_lengths_survive_a_restart_and_drift_stays_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "wh"
    with running(data_dir) as first:
        with first.connect(DATABASE) as conn:
            for statement in DDL:
                conn.cursor().execute(statement)
        before = capture_snapshot(_hook(first, monkeypatch), TARGETS)
        lengths_before = _lengths(first)
    assert (data_dir / GLOBAL_METADATA_FILE).is_file()

    with running(data_dir) as second:
        after = capture_snapshot(_hook(second, monkeypatch), TARGETS)
        lengths_after = _lengths(second)
        with second.connect(DATABASE) as conn:
            kept = conn.cursor().execute("select TRIP_ID, AMOUNT_CENTS from RIDES.RAW.TRIPS").fetchall()

    assert lengths_before["TRIPS.TRIP_ID"] == 16
    assert lengths_before["STATIONS.NAME"] == 64
    assert lengths_after == lengths_before
    assert kept == [("t1", 250)]
    report = diff_snapshots(before, after)
    assert (report.status, report.events) == ("clean", ())
    assert after.content_hash == before.content_hash


def test_a_rename_that_loses_lengths_is_still_paired(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(tmp_path / "wh") as warehouse:
        with warehouse.connect(DATABASE) as conn:
            for statement in DDL:
                conn.cursor().execute(statement)
        hook = _hook(warehouse, monkeypatch)
        before = capture_snapshot(hook, TARGETS)
        with warehouse.connect(DATABASE) as conn:
            conn.cursor().execute("alter table RIDES.RAW.TRIPS rename to RIDES.RAW.RIDES")
        after = capture_snapshot(hook, TARGETS)

    renamed = {table.name: table for table in after.tables}["RIDES"]
    # The stand-in forgets the declared lengths on a rename, as the issue described.
    assert {column.name: column.data_type for column in renamed.columns}["TRIP_ID"] == "TEXT"
    report = diff_snapshots(before, after)
    renames = [event for event in report.events if event.kind == "table_renamed"]
    assert [(event.table, event.new_table) for event in renames] == [("RAW.TRIPS", "RAW.RIDES")]
    assert renames[0].confidence is not None
    assert renames[0].confidence >= 0.8
    assert "TRIP_ID VARCHAR(16) -> VARCHAR" in (renames[0].reason or "")
    assert [event.kind for event in report.breaking_events] == ["table_renamed"]
    assert report.headline == "drift detected (1 change)"
