"""The report: its fingerprint and serialisation, and drift that a restart makes noisy (widening type changes)."""

from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.drift import DriftEvent, DriftPolicy, DriftReport, TableSchema, diff_snapshots
from airflow_selfheal.core.pages.drift import drift_page
from tests.unit.core.drift.samples import (
    CAPTURED_AT,
    CUSTOMERS,
    ORDERS,
    TRIPS,
    TRIPS_COLUMNS,
    event_messages,
    make_snapshot,
    make_table,
)


class TestFingerprint:
    @staticmethod
    def _report(captured_at: str = CAPTURED_AT) -> DriftReport:
        current = make_table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "VARCHAR"),
            ("STATUS", "VARCHAR"),
            ("DISCOUNT", "NUMBER(38,0)"),
        )
        return diff_snapshots(
            make_snapshot(ORDERS, CUSTOMERS, captured_at=captured_at),
            make_snapshot(current, captured_at=captured_at),
        )

    def test_is_16_hex_digits(self) -> None:
        fingerprint = self._report().fingerprint

        assert len(fingerprint) == 16
        int(fingerprint, 16)

    def test_stable_under_event_reordering(self) -> None:
        report = self._report()
        shuffled = DriftReport(
            status=report.status,
            events=tuple(reversed(report.events)),
            baseline_hash=report.baseline_hash,
            current_hash=report.current_hash,
        )

        assert len(report.events) == 4
        assert shuffled.fingerprint == report.fingerprint

    def test_stable_across_captured_at(self) -> None:
        assert (
            self._report("2025-01-01T00:00:00Z").fingerprint
            == self._report("2025-03-01T09:30:00Z").fingerprint
        )

    def test_ignores_confidence_and_reason(self) -> None:
        event = DriftEvent(kind="column_renamed", table="RAW.T", column="A", new_column="B", confidence=0.6)
        restated = DriftEvent(
            kind="column_renamed",
            table="RAW.T",
            column="A",
            new_column="B",
            confidence=0.9,
            reason="same type",
        )

        first = DriftReport(status="drift_detected", events=(event,), baseline_hash="b", current_hash="c")
        second = DriftReport(status="drift_detected", events=(restated,), baseline_hash="b", current_hash="c")

        assert first.fingerprint == second.fingerprint

    def test_differs_for_a_different_set(self) -> None:
        other = diff_snapshots(make_snapshot(ORDERS), make_snapshot(CUSTOMERS))

        assert other.fingerprint != self._report().fingerprint
        assert other.fingerprint


class TestModel:
    def test_report_round_trip_through_json(self) -> None:
        clients = TableSchema("PROD", "RAW", "CLIENTS", CUSTOMERS.columns)
        report = diff_snapshots(
            make_snapshot(ORDERS, CUSTOMERS), make_snapshot(clients), expected_tables=["RAW.NOPE"]
        )

        payload = json.loads(json.dumps(report.to_dict()))
        restored = DriftReport.from_dict(payload)

        assert restored == report
        assert payload["headline"] == report.headline == "drift detected (3 changes)"
        assert payload["fingerprint"] == report.fingerprint
        assert [event["message"] for event in payload["events"]] == event_messages(report)

    def test_invalid_status_rejected(self) -> None:
        with pytest.raises(ValueError, match="status must be one of"):
            DriftReport(status="dirty", events=(), baseline_hash=None, current_hash="c")

    def test_policy_values(self) -> None:
        assert [policy.value for policy in DriftPolicy] == ["fail", "warn", "report"]
        assert DriftPolicy("warn") is DriftPolicy.WARN


class TestRestartNoise:
    def test_lost_lengths_are_non_breaking_and_do_not_count(self) -> None:
        restarted = make_table(
            "RAW.TRIPS",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "NUMBER(10,0)"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(make_snapshot(TRIPS), make_snapshot(restarted))

        assert report.status == "clean"
        assert report.headline == "clean"
        assert report.fingerprint == ""
        assert [(event.column, event.breaking) for event in report.events] == [
            ("STATION_CODE", False),
            ("TRIP_ID", False),
        ]
        assert report.events[0].message == (
            "raw.trips.STATION_CODE changed type from TEXT(8) to TEXT (non-breaking: widened)."
        )
        assert report.to_dict()["non_breaking_changes"] == 2

    def test_one_real_change_among_the_noise_is_the_headline(self) -> None:
        changed = make_table(
            "RAW.TRIPS",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "TEXT"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(make_snapshot(TRIPS), make_snapshot(changed))

        assert report.status == "drift_detected"
        assert report.headline == "drift detected (1 change)"
        assert [event.column for event in report.breaking_events] == ["AMOUNT_CENTS"]
        assert {event.column for event in report.non_breaking_events} == {"TRIP_ID", "STATION_CODE"}
        only_real = DriftReport(
            status="drift_detected",
            events=report.breaking_events,
            baseline_hash=report.baseline_hash,
            current_hash=report.current_hash,
        )
        assert report.fingerprint == only_real.fingerprint

    def test_page_lists_only_breaking_changes(self) -> None:
        changed = make_table(
            "RAW.TRIPS", ("TRIP_ID", "TEXT"), ("STATION_CODE", "TEXT"), ("AMOUNT_CENTS", "TEXT")
        )
        report = diff_snapshots(
            make_snapshot(make_table("RAW.TRIPS", *TRIPS_COLUMNS[:3])), make_snapshot(changed)
        )

        page = drift_page("rides_raw", report, "v1", pipeline="rides")

        (section,) = page.sections
        assert "AMOUNT_CENTS" in section[1]
        assert "TRIP_ID" not in section[1]
        assert "STATION_CODE" not in section[1]
        assert (page.details["changes"], page.details["non_breaking_changes"]) == (1, 2)

    def test_old_event_records_read_the_same(self) -> None:
        record = {
            "kind": "column_type_changed",
            "table": "RAW.TRIPS",
            "column": "TRIP_ID",
            "old_type": "VARCHAR(16)",
            "new_type": "TEXT",
        }

        event = DriftEvent.from_dict(record)

        assert event.breaking is False
        assert DriftEvent.from_dict(event.to_dict()) == event
