from __future__ import annotations

import pytest

from airflow_selfheal.core.drift import TableSchema, diff_snapshots
from tests.unit.core.drift.samples import CUSTOMERS, ORDERS, event_messages, make_snapshot, make_table


class TestDiff:
    @pytest.mark.parametrize(
        ("baseline", "current", "expected"),
        [
            pytest.param(
                (ORDERS,),
                (
                    make_table(
                        "RAW.ORDERS",
                        ("ID", "NUMBER(38,0)", False),
                        ("AMOUNT", "NUMBER(10,2)"),
                        ("STATUS", "VARCHAR"),
                    ),
                ),
                ["raw.orders lost column CUSTOMER_EMAIL."],
                id="column-removed",
            ),
            pytest.param(
                (ORDERS,),
                (
                    make_table(
                        "RAW.ORDERS",
                        ("ID", "NUMBER(38,0)", False),
                        ("AMOUNT", "NUMBER(10,2)"),
                        ("CUSTOMER_EMAIL", "VARCHAR"),
                        ("STATUS", "VARCHAR"),
                        ("DISCOUNT", "NUMBER(38,0)"),
                    ),
                ),
                ["raw.orders gained column DISCOUNT (NUMBER(38,0))."],
                id="column-added",
            ),
            pytest.param(
                (ORDERS,),
                (
                    make_table(
                        "RAW.ORDERS",
                        ("ID", "NUMBER(38,0)", False),
                        ("AMOUNT", "VARCHAR"),
                        ("CUSTOMER_EMAIL", "VARCHAR"),
                        ("STATUS", "VARCHAR"),
                    ),
                ),
                ["raw.orders.AMOUNT changed type from NUMBER(10,2) to VARCHAR."],
                id="column-type-changed",
            ),
            pytest.param(
                (ORDERS,),
                (
                    make_table(
                        "RAW.ORDERS",
                        ("ID", "NUMBER(38,0)", True),
                        ("AMOUNT", "NUMBER(10,2)"),
                        ("CUSTOMER_EMAIL", "VARCHAR"),
                        ("STATUS", "VARCHAR", False),
                    ),
                ),
                ["raw.orders.ID became nullable.", "raw.orders.STATUS became NOT NULL."],
                id="column-nullability-changed",
            ),
            pytest.param(
                (ORDERS, make_table("RAW.PRODUCTS", ("SKU", "VARCHAR"))),
                (ORDERS,),
                ["raw.products was removed."],
                id="table-removed",
            ),
            pytest.param(
                (ORDERS,),
                (ORDERS, make_table("RAW.REFUNDS", ("ID", "NUMBER(38,0)"))),
                ["raw.refunds was added."],
                id="table-added",
            ),
        ],
    )
    def test_event_messages(
        self, baseline: tuple[TableSchema, ...], current: tuple[TableSchema, ...], expected: list[str]
    ) -> None:
        report = diff_snapshots(make_snapshot(*baseline), make_snapshot(*current))

        assert report.status == "drift_detected"
        assert event_messages(report) == expected

    @pytest.mark.parametrize(
        ("old_type", "new_type"),
        [
            pytest.param("NUMBER(38,0)", "INT", id="number-vs-int"),
            pytest.param("TEXT", "VARCHAR", id="text-vs-varchar"),
            pytest.param("VARCHAR(16777216)", "TEXT", id="varchar-max-vs-text"),
            pytest.param("TIMESTAMP_NTZ(9)", "DATETIME", id="timestamp-default-precision"),
            pytest.param("DOUBLE", "FLOAT", id="double-vs-float"),
        ],
    )
    def test_spelling_only_differences_are_clean(self, old_type: str, new_type: str) -> None:
        report = diff_snapshots(
            make_snapshot(make_table("RAW.T", ("C", old_type))),
            make_snapshot(make_table("RAW.T", ("C", new_type))),
        )

        assert (report.status, report.events, report.headline) == ("clean", (), "clean")
        assert report.fingerprint == ""

    def test_clone_in_another_database_is_clean(self) -> None:
        clone = TableSchema("PROD_CLONE", ORDERS.schema, ORDERS.name, ORDERS.columns)

        report = diff_snapshots(make_snapshot(ORDERS), make_snapshot(clone))

        assert report.status == "clean"
        assert report.baseline_hash != report.current_hash

    def test_same_key_in_two_databases_is_rejected(self) -> None:
        twice = make_snapshot(ORDERS, TableSchema("OTHER", "RAW", "ORDERS", ()))

        with pytest.raises(ValueError, match=r"RAW\.ORDERS twice"):
            diff_snapshots(make_snapshot(ORDERS), twice)

    def test_events_sorted_by_table_then_kind_then_column(self) -> None:
        baseline = make_snapshot(
            make_table("RAW.A", ("X", "VARCHAR"), ("Y", "VARCHAR")),
            make_table("RAW.B", ("ID", "NUMBER(38,0)")),
        )
        current = make_snapshot(
            make_table("RAW.A", ("Y", "NUMBER(38,0)"), ("Z", "DATE"), ("W", "DATE")),
            make_table("RAW.C", ("SKU", "VARCHAR")),
        )

        report = diff_snapshots(baseline, current)

        assert [(event.table, event.kind, event.column) for event in report.events] == [
            ("RAW.A", "column_removed", "X"),
            ("RAW.A", "column_added", "W"),
            ("RAW.A", "column_added", "Z"),
            ("RAW.A", "column_type_changed", "Y"),
            ("RAW.B", "table_removed", None),
            ("RAW.C", "table_added", None),
        ]
        assert report.headline == "drift detected (6 changes)"

    def test_headline_singular(self) -> None:
        report = diff_snapshots(make_snapshot(ORDERS), make_snapshot(ORDERS, CUSTOMERS))

        assert report.headline == "drift detected (1 change)"

    def test_large_snapshot(self) -> None:
        columns = [(f"COLUMN_{index:02d}", "NUMBER(38,0)" if index % 2 else "VARCHAR") for index in range(20)]
        baseline = make_snapshot(*[make_table(f"RAW.TABLE_{index:03d}", *columns) for index in range(500)])
        changed_columns = [*columns[:19], ("COLUMN_19", "FLOAT"), ("NEW_COLUMN", "DATE")]
        current_tables = [
            make_table(f"RAW.TABLE_{index:03d}", *(changed_columns if index % 10 == 0 else columns))
            for index in range(5, 500)
        ]
        current_tables.append(make_table("RAW.BRAND_NEW", ("ONLY", "BOOLEAN")))

        report = diff_snapshots(baseline, make_snapshot(*current_tables))

        kinds = [event.kind for event in report.events]
        assert kinds.count("table_removed") == 5
        assert kinds.count("table_added") == 1
        assert kinds.count("column_type_changed") == 49
        assert kinds.count("column_added") == 49
        assert len(report.events) == 104


class TestExpectedTables:
    def test_declared_source_never_seen(self) -> None:
        report = diff_snapshots(
            make_snapshot(ORDERS), make_snapshot(ORDERS), expected_tables=["raw.x", "RAW.ORDERS"]
        )

        assert report.status == "drift_detected"
        assert event_messages(report) == ["raw.x is declared as a source but was not found."]

    def test_declared_source_in_baseline_is_removed_not_missing(self) -> None:
        report = diff_snapshots(
            make_snapshot(ORDERS, CUSTOMERS), make_snapshot(ORDERS), expected_tables=["RAW.CUSTOMERS"]
        )

        assert [event.kind for event in report.events] == ["table_removed"]

    def test_three_part_names_match_by_schema_and_table(self) -> None:
        report = diff_snapshots(
            None, make_snapshot(ORDERS), expected_tables=["PROD.RAW.ORDERS", "PROD.RAW.X"]
        )

        assert [(event.kind, event.table) for event in report.events] == [("table_not_found", "RAW.X")]

    def test_no_baseline(self) -> None:
        report = diff_snapshots(None, make_snapshot(ORDERS), expected_tables=["RAW.ORDERS", "RAW.MISSING"])

        assert report.status == "no_baseline"
        assert report.headline == "no baseline"
        assert report.baseline_hash is None
        assert report.current_hash == make_snapshot(ORDERS).content_hash
        assert event_messages(report) == ["raw.missing is declared as a source but was not found."]

    def test_no_baseline_without_expectations_has_no_events(self) -> None:
        report = diff_snapshots(None, make_snapshot(ORDERS))

        assert (report.status, report.events, report.fingerprint) == ("no_baseline", (), "")
