"""The retry's bounded wait for the warehouse: a fake clock for the backoff, and a real closed port."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_selfheal.repair import RepairConfig
from airflow_selfheal.repair.warehouse import WarehouseUnreachableError, wait_for_warehouse
from dev.warehouse import Warehouse, free_port


class FakeClock:
    """Time that moves only when slept through, or when a probe takes time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing_until(clock: FakeClock, answers_at: float, probe_seconds: float = 0.0) -> Any:
    def probe() -> None:
        clock.now += probe_seconds
        if clock.now < answers_at:
            raise ConnectionRefusedError("[Errno 111] Connection refused")

    return probe


def test_a_warehouse_that_answers_is_not_waited_for() -> None:
    clock = FakeClock()
    result = wait_for_warehouse(
        "wh", timedelta(minutes=10), probe=lambda: None, clock=clock, sleep=clock.sleep
    )
    assert result.model_dump() == {"answered": True, "attempts": 1, "waited_seconds": 0.0}
    assert clock.sleeps == []


def test_backoff_doubles_up_to_the_max_until_the_warehouse_answers() -> None:
    clock = FakeClock()
    result = wait_for_warehouse(
        "wh",
        timedelta(minutes=10),
        first_delay=2.0,
        max_delay=10.0,
        probe=failing_until(clock, answers_at=40.0),
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert result.answered is True
    assert result.attempts == 7
    assert result.waited_seconds == 44.0


def test_the_bound_stops_the_wait_and_says_how_long_it_waited() -> None:
    clock = FakeClock()
    with pytest.raises(WarehouseUnreachableError) as raised:
        wait_for_warehouse(
            "prod_wh",
            timedelta(seconds=30),
            first_delay=4.0,
            probe=failing_until(clock, answers_at=1e9, probe_seconds=1.0),
            clock=clock,
            sleep=clock.sleep,
        )
    message = str(raised.value)
    # Probes of 1s start at 0, 5, 14 and 30 (the last pause is cut short so that the bound itself is probed).
    assert clock.sleeps == [4.0, 8.0, 15.0]
    assert "connection 'prod_wh'" in message
    assert "within 0:00:30 (waited 31.0s, 4 attempt(s))" in message
    assert "ConnectionRefusedError: [Errno 111] Connection refused" in message
    assert "warehouse_wait" in message  # names the knob for a longer outage


def test_the_last_error_is_redacted() -> None:
    def probe() -> None:
        raise RuntimeError("login failed: password=hunter2-is-secret")

    clock = FakeClock()
    with pytest.raises(WarehouseUnreachableError) as raised:
        wait_for_warehouse("wh", timedelta(0), probe=probe, clock=clock, sleep=clock.sleep)
    assert "hunter2-is-secret" not in str(raised.value)
    assert "1 attempt(s)" in str(raised.value)


def test_a_closed_port_is_waited_for_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real hook and connector against a port nobody listens on: a small bound, then a clear failure."""
    closed = Warehouse("127.0.0.1", free_port(), "/nonexistent")
    monkeypatch.setenv("AIRFLOW_CONN_CLOSED_WH", closed.airflow_conn_uri())
    with pytest.raises(WarehouseUnreachableError) as raised:
        wait_for_warehouse("closed_wh", timedelta(seconds=1), first_delay=0.5)
    message = str(raised.value)
    assert "connection 'closed_wh'" in message
    assert "250001" in message  # the connector's "Could not connect to Snowflake backend"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(
            timedelta(seconds=-1), "warehouse_wait must be a timedelta of zero or more", id="negative"
        ),
        pytest.param(600, "warehouse_wait must be a timedelta", id="number"),
    ],
)
def test_config_refuses_a_bad_bound(value: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RepairConfig(project_dir="/p", snowflake_conn_id="wh", prod_database="DEMO", warehouse_wait=value)


def test_config_default_bound_is_ten_minutes() -> None:
    config = RepairConfig(project_dir="/p", snowflake_conn_id="wh", prod_database="DEMO")
    assert config.warehouse_wait == timedelta(minutes=10)
