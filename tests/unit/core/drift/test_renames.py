"""Inferred renames of columns and tables, including renames that lose declared lengths on the way."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.drift import TableSchema, diff_snapshots
from tests.unit.core.drift.samples import (
    CUSTOMERS,
    ORDERS,
    TRIPS,
    TRIPS_COLUMNS,
    event_messages,
    make_snapshot,
    make_table,
)


class TestRenames:
    def test_column_rename_inferred(self) -> None:
        current = make_table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "NUMBER(10,2)"),
            ("EMAIL_ADDRESS", "TEXT"),
            ("STATUS", "VARCHAR"),
        )

        report = diff_snapshots(make_snapshot(ORDERS), make_snapshot(current))

        (event,) = report.events
        assert (event.kind, event.column, event.new_column) == (
            "column_renamed",
            "CUSTOMER_EMAIL",
            "EMAIL_ADDRESS",
        )
        assert (event.old_type, event.new_type) == ("VARCHAR", "TEXT")
        assert event.confidence == 0.85
        assert event.reason == "same type VARCHAR; same position 3; name similarity 0.50"
        assert event.message == (
            "raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS "
            "(confidence 0.85: same type VARCHAR; same position 3; name similarity 0.50)."
        )

    def test_rename_with_different_type_is_removed_and_added(self) -> None:
        current = make_table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "NUMBER(10,2)"),
            ("EMAIL_ADDRESS", "NUMBER(38,0)"),
            ("STATUS", "VARCHAR"),
        )

        report = diff_snapshots(make_snapshot(ORDERS), make_snapshot(current))

        assert [event.kind for event in report.events] == ["column_removed", "column_added"]
        assert event_messages(report) == [
            "raw.orders lost column CUSTOMER_EMAIL.",
            "raw.orders gained column EMAIL_ADDRESS (NUMBER(38,0)).",
        ]

    def test_same_type_alone_is_not_a_rename(self) -> None:
        baseline = make_table(
            "RAW.T", ("ID", "NUMBER(38,0)"), ("LEGACY_FLAG", "VARCHAR"), ("NOTE", "VARCHAR")
        )
        current = make_table("RAW.T", ("ID", "NUMBER(38,0)"), ("NOTE", "VARCHAR"), ("ZIP", "VARCHAR"))

        report = diff_snapshots(make_snapshot(baseline), make_snapshot(current))

        assert [(event.kind, event.column) for event in report.events] == [
            ("column_removed", "LEGACY_FLAG"),
            ("column_added", "ZIP"),
        ]

    def test_two_renames_on_one_table_pair_correctly(self) -> None:
        baseline = make_table(
            "RAW.CUSTOMERS",
            ("ID", "NUMBER(38,0)"),
            ("CUSTOMER_EMAIL", "VARCHAR"),
            ("CUSTOMER_NAME", "VARCHAR"),
            ("SIGNUP", "DATE"),
        )
        current = make_table(
            "RAW.CUSTOMERS",
            ("ID", "NUMBER(38,0)"),
            ("EMAIL_ADDRESS", "VARCHAR"),
            ("FULL_NAME", "VARCHAR"),
            ("SIGNUP", "DATE"),
        )

        report = diff_snapshots(make_snapshot(baseline), make_snapshot(current))

        assert [(event.kind, event.column, event.new_column) for event in report.events] == [
            ("column_renamed", "CUSTOMER_EMAIL", "EMAIL_ADDRESS"),
            ("column_renamed", "CUSTOMER_NAME", "FULL_NAME"),
        ]
        assert all(event.confidence is not None and event.confidence >= 0.5 for event in report.events)

    def test_renamed_column_that_became_not_null(self) -> None:
        baseline = make_table("RAW.T", ("ID", "NUMBER(38,0)"), ("OLD_CODE", "VARCHAR", True))
        current = make_table("RAW.T", ("ID", "NUMBER(38,0)"), ("NEW_CODE", "VARCHAR", False))

        report = diff_snapshots(make_snapshot(baseline), make_snapshot(current))

        assert [(event.kind, event.column) for event in report.events] == [
            ("column_renamed", "OLD_CODE"),
            ("column_nullability_changed", "NEW_CODE"),
        ]

    def test_table_rename_inferred(self) -> None:
        clients = TableSchema("PROD", "RAW", "CLIENTS", CUSTOMERS.columns)

        report = diff_snapshots(make_snapshot(ORDERS, CUSTOMERS), make_snapshot(ORDERS, clients))

        (event,) = report.events
        assert (event.kind, event.table, event.new_table) == ("table_renamed", "RAW.CUSTOMERS", "RAW.CLIENTS")
        assert event.confidence == 0.93
        assert event.message == (
            "raw.customers was renamed to raw.clients "
            "(confidence 0.93: same columns 3/3 by name and type; name similarity 0.25)."
        )

    def test_table_rename_carries_its_column_changes(self) -> None:
        wide = make_table("RAW.CUSTOMERS", *[(f"COL_{index}", "VARCHAR") for index in range(10)])
        renamed = make_table(
            "RAW.CLIENTS", *[(f"COL_{index}", "VARCHAR") for index in range(9)], ("EXTRA", "DATE")
        )

        report = diff_snapshots(make_snapshot(wide), make_snapshot(renamed))

        assert [(event.kind, event.table) for event in report.events] == [
            ("column_removed", "RAW.CLIENTS"),
            ("column_added", "RAW.CLIENTS"),
            ("table_renamed", "RAW.CUSTOMERS"),
        ]

    def test_tables_with_little_overlap_are_not_renamed(self) -> None:
        products = make_table("RAW.PRODUCTS", ("SKU", "VARCHAR"), ("PRICE", "NUMBER(10,2)"))

        report = diff_snapshots(make_snapshot(CUSTOMERS), make_snapshot(products))

        assert [event.kind for event in report.events] == ["table_removed", "table_added"]


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
        renamed = make_table(
            f"RAW.{new_name}",
            *[(name, new_type) for (name, _), new_type in zip(TRIPS_COLUMNS, new_types, strict=True)],
        )

        report = diff_snapshots(make_snapshot(TRIPS), make_snapshot(renamed))

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
        renamed = make_table(
            "RAW.RIDES",
            ("TRIP_ID", "TEXT"),
            ("STATION_CODE", "TEXT"),
            ("AMOUNT_CENTS", "TEXT"),
            ("RIDER_NOTE", "TEXT"),
            ("STARTED_AT", "TIMESTAMP_NTZ"),
        )

        report = diff_snapshots(make_snapshot(TRIPS), make_snapshot(renamed))

        assert {event.kind for event in report.events} >= {"table_renamed"}
        breaking = [(event.kind, event.column) for event in report.breaking_events]
        assert ("column_type_changed", "AMOUNT_CENTS") in breaking

    def test_column_rename_tolerates_a_lost_length(self) -> None:
        before = make_table("RAW.STATIONS", ("ID", "NUMBER(38,0)"), ("STATION_NAME", "VARCHAR(64)"))
        after = make_table("RAW.STATIONS", ("ID", "NUMBER(38,0)"), ("NAME", "TEXT"))

        report = diff_snapshots(make_snapshot(before), make_snapshot(after))

        (event,) = [event for event in report.events if event.kind == "column_renamed"]
        assert (event.column, event.new_column) == ("STATION_NAME", "NAME")
        assert (event.reason or "").startswith("same type family VARCHAR (VARCHAR(64) -> VARCHAR)")

    def test_unrelated_tables_still_do_not_pair(self) -> None:
        stations = make_table("RAW.STATIONS", ("STATION_ID", "TEXT"), ("CAPACITY", "NUMBER(38,0)"))

        report = diff_snapshots(make_snapshot(TRIPS), make_snapshot(stations))

        assert sorted(event.kind for event in report.events) == ["table_added", "table_removed"]
