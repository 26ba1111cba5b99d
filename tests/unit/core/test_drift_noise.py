"""Drift that a restart or a copy makes noisy: widening type changes and renames that lose declared lengths."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.drift import (
    ColumnSchema,
    DriftEvent,
    DriftReport,
    SchemaSnapshot,
    TableSchema,
    diff_snapshots,
    is_widening,
    type_family,
)
from airflow_selfheal.operators.drift import drift_page


def _table(key: str, *columns: tuple[str, str]) -> TableSchema:
    schema, name = key.split(".")
    return TableSchema(
        database="PROD",
        schema=schema,
        name=name,
        columns=tuple(
            ColumnSchema(name=column, data_type=data_type, nullable=True, position=position)
            for position, (column, data_type) in enumerate(columns, start=1)
        ),
    )


def _snapshot(*tables: TableSchema) -> SchemaSnapshot:
    return SchemaSnapshot(tables=tables, captured_at="2025-01-01T00:00:00Z", source="information_schema")


TRIPS = _table(
    "RAW.TRIPS",
    ("TRIP_ID", "VARCHAR(16)"),
    ("STATION_CODE", "TEXT(8)"),
    ("AMOUNT_CENTS", "NUMBER(10,0)"),
    ("RIDER_NOTE", "VARCHAR(16777216)"),
    ("STARTED_AT", "TIMESTAMP_NTZ"),
)


class TestTypeFamily:
    @pytest.mark.parametrize(
        ("data_type", "family"),
        [
            pytest.param("VARCHAR(16)", "VARCHAR", id="varchar-n"),
            pytest.param("TEXT", "VARCHAR", id="text"),
            pytest.param("CHAR(3)", "VARCHAR", id="char"),
            pytest.param("NUMBER(10,2)", "NUMBER", id="number-p-s"),
            pytest.param("INT", "NUMBER", id="int"),
            pytest.param("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ", id="timestamp-precision"),
            pytest.param("FLOAT", "FLOAT", id="float"),
            pytest.param("VARIANT", "VARIANT", id="unknown-passes"),
        ],
    )
    def test_family(self, data_type: str, family: str) -> None:
        assert type_family(data_type) == family


class TestWidening:
    @pytest.mark.parametrize(
        ("old_type", "new_type", "widening"),
        [
            pytest.param("VARCHAR(16)", "TEXT", True, id="varchar-to-unbounded"),
            pytest.param("TEXT(16)", "VARCHAR(255)", True, id="varchar-longer"),
            pytest.param("VARCHAR(16)", "VARCHAR(16)", True, id="same-length"),
            pytest.param("VARCHAR", "VARCHAR(16)", False, id="narrowed-from-unbounded"),
            pytest.param("VARCHAR(255)", "VARCHAR(16)", False, id="narrowed"),
            pytest.param("NUMBER(10,0)", "NUMBER(38,0)", True, id="number-more-precision"),
            pytest.param("NUMBER(10,2)", "NUMBER(12,2)", True, id="number-same-scale"),
            pytest.param("NUMBER(10,2)", "NUMBER(12,4)", False, id="number-scale-changed"),
            pytest.param("NUMBER(12,0)", "NUMBER(10,0)", False, id="number-narrowed"),
            pytest.param("NUMBER(10,0)", "TEXT", False, id="family-changed"),
            pytest.param("BINARY(16)", "BINARY", True, id="binary-unbounded"),
            pytest.param("DATE", "TIMESTAMP_NTZ", False, id="date-to-timestamp"),
        ],
    )
    def test_is_widening(self, old_type: str, new_type: str, widening: bool) -> None:
        assert is_widening(old_type, new_type) is widening


class TestRestartNoise:
    def test_lost_lengths_are_non_breaking_and_do_not_count(self) -> None:
        restarted = _table(
            "RAW.TRIPS",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "NUMBER(10,0)"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(_snapshot(TRIPS), _snapshot(restarted))

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
        changed = _table(
            "RAW.TRIPS",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "TEXT"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(_snapshot(TRIPS), _snapshot(changed))

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
        changed = _table("RAW.TRIPS", ("TRIP_ID", "TEXT"), ("STATION_CODE", "TEXT"), ("AMOUNT_CENTS", "TEXT"))
        report = diff_snapshots(_snapshot(_table("RAW.TRIPS", *TRIPS_COLUMNS[:3])), _snapshot(changed))

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


TRIPS_COLUMNS = [(column.name, column.data_type) for column in TRIPS.columns]


class TestTableRenameWithLostLengths:
    @pytest.mark.parametrize(
        ("new_name", "new_types"),
        [
            pytest.param(
                "RIDES", ["TEXT", "TEXT", "NUMBER(38,0)", "TEXT", "TIMESTAMP_NTZ"], id="all-lengths-lost"
            ),
            pytest.param(
                "TRIPS_V2", ["TEXT", "TEXT(8)", "NUMBER(10,0)", "TEXT", "TIMESTAMP_NTZ"], id="one-lost"
            ),
            pytest.param(
                "JOURNEYS",
                ["VARCHAR(32)", "VARCHAR(8)", "NUMBER(12,0)", "VARCHAR", "TIMESTAMP_NTZ"],
                id="wider",
            ),
        ],
    )
    def test_pairs_on_names_and_type_families(self, new_name: str, new_types: list[str]) -> None:
        renamed = _table(
            f"RAW.{new_name}",
            *[(name, new_type) for (name, _), new_type in zip(TRIPS_COLUMNS, new_types, strict=True)],
        )

        report = diff_snapshots(_snapshot(TRIPS), _snapshot(renamed))

        renames = [event for event in report.events if event.kind == "table_renamed"]
        assert [(event.table, event.new_table) for event in renames] == [("RAW.TRIPS", f"RAW.{new_name}")]
        (rename,) = renames
        assert rename.confidence is not None
        assert 0.8 <= rename.confidence < 0.95
        assert "length or precision differs" in (rename.reason or "")
        assert "by name and type family" in (rename.reason or "")
        assert not [event for event in report.events if event.kind in ("table_removed", "table_added")]
        assert all(not event.breaking for event in report.events if event.kind == "column_type_changed")

    def test_a_real_type_change_in_a_renamed_table_stays_breaking(self) -> None:
        renamed = _table(
            "RAW.RIDES",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "TEXT"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(_snapshot(TRIPS), _snapshot(renamed))

        assert {event.kind for event in report.events} >= {"table_renamed"}
        breaking = [(event.kind, event.column) for event in report.breaking_events]
        assert ("column_type_changed", "AMOUNT_CENTS") in breaking

    def test_column_rename_tolerates_a_lost_length(self) -> None:
        before = _table("RAW.STATIONS", ("ID", "NUMBER(38,0)"), ("STATION_NAME", "VARCHAR(64)"))
        after = _table("RAW.STATIONS", ("ID", "NUMBER(38,0)"), ("NAME", "TEXT"))

        report = diff_snapshots(_snapshot(before), _snapshot(after))

        (event,) = [event for event in report.events if event.kind == "column_renamed"]
        assert (event.column, event.new_column) == ("STATION_NAME", "NAME")
        assert (event.reason or "").startswith("same type family VARCHAR (VARCHAR(64) -> VARCHAR)")

    def test_unrelated_tables_still_do_not_pair(self) -> None:
        stations = _table("RAW.STATIONS", ("STATION_ID", "TEXT"), ("CAPACITY", "NUMBER(38,0)"))

        report = diff_snapshots(_snapshot(TRIPS), _snapshot(stations))

        assert sorted(event.kind for event in report.events) == ["table_added", "table_removed"]
