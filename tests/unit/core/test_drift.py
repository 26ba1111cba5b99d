from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.drift import (
    EVENT_KINDS,
    ColumnSchema,
    DriftEvent,
    DriftPolicy,
    DriftReport,
    SchemaSnapshot,
    TableSchema,
    diff_snapshots,
    normalize_type,
)

CAPTURED_AT = "2025-01-01T00:00:00Z"


def _table(
    key: str, *columns: tuple[str, str] | tuple[str, str, bool], database: str = "PROD"
) -> TableSchema:
    schema, name = key.split(".")
    built = []
    for position, column in enumerate(columns, start=1):
        nullable = column[2] if len(column) == 3 else True
        built.append(ColumnSchema(name=column[0], data_type=column[1], nullable=nullable, position=position))
    return TableSchema(database=database, schema=schema, name=name, columns=tuple(built))


def _snapshot(*tables: TableSchema, captured_at: str = CAPTURED_AT) -> SchemaSnapshot:
    return SchemaSnapshot(tables=tables, captured_at=captured_at, source="information_schema")


ORDERS = _table(
    "RAW.ORDERS",
    ("ID", "NUMBER(38,0)", False),
    ("AMOUNT", "NUMBER(10,2)"),
    ("CUSTOMER_EMAIL", "VARCHAR"),
    ("STATUS", "VARCHAR"),
)
CUSTOMERS = _table("RAW.CUSTOMERS", ("ID", "NUMBER(38,0)"), ("NAME", "VARCHAR"), ("EMAIL", "VARCHAR"))


def _messages(report: DriftReport) -> list[str]:
    return [event.message for event in report.events]


class TestNormalizeType:
    @pytest.mark.parametrize(
        ("data_type", "expected"),
        [
            pytest.param("NUMBER(38,0)", "NUMBER(38,0)", id="number-38-0"),
            pytest.param("INT", "NUMBER(38,0)", id="int"),
            pytest.param("INTEGER", "NUMBER(38,0)", id="integer"),
            pytest.param("BIGINT", "NUMBER(38,0)", id="bigint"),
            pytest.param("SMALLINT", "NUMBER(38,0)", id="smallint"),
            pytest.param("TINYINT", "NUMBER(38,0)", id="tinyint"),
            pytest.param("BYTEINT", "NUMBER(38,0)", id="byteint"),
            pytest.param("DECIMAL(38,0)", "NUMBER(38,0)", id="decimal-38-0"),
            pytest.param("NUMERIC(38,0)", "NUMBER(38,0)", id="numeric-38-0"),
            pytest.param("NUMBER", "NUMBER(38,0)", id="bare-number"),
            pytest.param("DECIMAL(10,2)", "NUMBER(10,2)", id="decimal-p-s"),
            pytest.param("numeric( 12 , 4 )", "NUMBER(12,4)", id="numeric-spaced-lower"),
            pytest.param("NUMBER(10)", "NUMBER(10,0)", id="number-precision-only"),
            pytest.param("TEXT", "VARCHAR", id="text"),
            pytest.param("STRING", "VARCHAR", id="string"),
            pytest.param("VARCHAR", "VARCHAR", id="varchar"),
            pytest.param("CHAR VARYING", "VARCHAR", id="char-varying"),
            pytest.param("NVARCHAR", "VARCHAR", id="nvarchar"),
            pytest.param("VARCHAR(16777216)", "VARCHAR", id="varchar-max"),
            pytest.param("varchar(50)", "VARCHAR(50)", id="varchar-explicit-length"),
            pytest.param("CHAR", "VARCHAR(1)", id="char"),
            pytest.param("CHARACTER", "VARCHAR(1)", id="character"),
            pytest.param("FLOAT", "FLOAT", id="float"),
            pytest.param("FLOAT4", "FLOAT", id="float4"),
            pytest.param("FLOAT8", "FLOAT", id="float8"),
            pytest.param("DOUBLE", "FLOAT", id="double"),
            pytest.param("double   precision", "FLOAT", id="double-precision-spaces"),
            pytest.param("REAL", "FLOAT", id="real"),
            pytest.param("DATETIME", "TIMESTAMP_NTZ", id="datetime"),
            pytest.param("TIMESTAMP", "TIMESTAMP_NTZ", id="timestamp"),
            pytest.param("TIMESTAMP_NTZ", "TIMESTAMP_NTZ", id="timestamp-ntz"),
            pytest.param("TIMESTAMP_NTZ(9)", "TIMESTAMP_NTZ", id="timestamp-ntz-default-precision"),
            pytest.param("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ(3)", id="timestamp-ntz-other-precision"),
            pytest.param("timestamp without time zone", "TIMESTAMP_NTZ", id="timestamp-without-tz"),
            pytest.param("TIMESTAMP_TZ", "TIMESTAMP_TZ", id="timestamp-tz"),
            pytest.param("TIMESTAMP WITH TIME ZONE", "TIMESTAMP_TZ", id="timestamp-with-tz"),
            pytest.param("TIMESTAMP_LTZ(9)", "TIMESTAMP_LTZ", id="timestamp-ltz"),
            pytest.param("BOOLEAN", "BOOLEAN", id="boolean"),
            pytest.param("bool", "BOOLEAN", id="bool"),
            pytest.param("DATE", "DATE", id="date"),
            pytest.param("BINARY", "BINARY", id="binary"),
            pytest.param("VARBINARY", "BINARY", id="varbinary"),
            pytest.param("VARIANT", "VARIANT", id="variant"),
            pytest.param("object", "OBJECT", id="object"),
            pytest.param("ARRAY", "ARRAY", id="array"),
            pytest.param("  geography ", "GEOGRAPHY", id="unknown-upper-cased"),
            pytest.param("ARRAY(NUMBER(38,0))", "ARRAY(NUMBER(38,0))", id="unknown-structured-passthrough"),
        ],
    )
    def test_canonical_spelling(self, data_type: str, expected: str) -> None:
        assert normalize_type(data_type) == expected

    @pytest.mark.parametrize(
        ("left", "right"),
        [
            pytest.param("NUMBER(10,2)", "NUMBER(12,2)", id="precision"),
            pytest.param("VARCHAR(50)", "VARCHAR", id="length"),
            pytest.param("TIMESTAMP_NTZ", "TIMESTAMP_TZ", id="time-zone"),
            pytest.param("NUMBER(38,0)", "FLOAT", id="number-vs-float"),
        ],
    )
    def test_real_differences_stay_different(self, left: str, right: str) -> None:
        assert normalize_type(left) != normalize_type(right)


class TestSnapshot:
    def test_key_and_fqn_are_upper_case(self) -> None:
        table = TableSchema(database="prod", schema="raw", name="orders", columns=())

        assert (table.key, table.fqn) == ("RAW.ORDERS", "PROD.RAW.ORDERS")

    def test_round_trip_through_json(self) -> None:
        snapshot = _snapshot(ORDERS, CUSTOMERS)

        restored = SchemaSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict())))

        assert restored.to_dict() == snapshot.to_dict()
        assert restored.content_hash == snapshot.content_hash

    def test_to_dict_order_is_stable(self) -> None:
        reversed_columns = TableSchema("PROD", "RAW", "ORDERS", tuple(reversed(ORDERS.columns)))

        first = _snapshot(ORDERS, CUSTOMERS).to_dict()
        second = _snapshot(CUSTOMERS, reversed_columns).to_dict()

        assert first == second
        assert [table["name"] for table in first["tables"]] == ["CUSTOMERS", "ORDERS"]

    def test_content_hash_ignores_captured_at(self) -> None:
        early = _snapshot(ORDERS, captured_at="2025-01-01T00:00:00Z")
        late = _snapshot(ORDERS, captured_at="2025-06-01T12:00:00Z")

        assert early.content_hash == late.content_hash
        assert len(early.content_hash) == 64

    def test_content_hash_changes_with_schema(self) -> None:
        changed = _table("RAW.ORDERS", ("ID", "NUMBER(38,0)", False))

        assert _snapshot(ORDERS).content_hash != _snapshot(changed).content_hash

    def test_unknown_source_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="source must be one of"):
            SchemaSnapshot(tables=(), captured_at=CAPTURED_AT, source="guess")


class TestFromRows:
    def test_information_schema_mappings(self) -> None:
        rows = [
            {
                "TABLE_CATALOG": "prod",
                "TABLE_SCHEMA": "raw",
                "TABLE_NAME": "orders",
                "COLUMN_NAME": "amount",
                "DATA_TYPE": "NUMBER",
                "IS_NULLABLE": "YES",
                "ORDINAL_POSITION": 2,
                "NUMERIC_PRECISION": 10,
                "NUMERIC_SCALE": 2,
                "CHARACTER_MAXIMUM_LENGTH": None,
            },
            {
                "TABLE_CATALOG": "prod",
                "TABLE_SCHEMA": "raw",
                "TABLE_NAME": "orders",
                "COLUMN_NAME": "id",
                "DATA_TYPE": "NUMBER",
                "IS_NULLABLE": "NO",
                "ORDINAL_POSITION": 1,
                "NUMERIC_PRECISION": 38,
                "NUMERIC_SCALE": 0,
            },
            {
                "TABLE_CATALOG": "prod",
                "TABLE_SCHEMA": "raw",
                "TABLE_NAME": "orders",
                "COLUMN_NAME": "status",
                "DATA_TYPE": "VARCHAR",
                "IS_NULLABLE": "YES",
                "ORDINAL_POSITION": 3,
                "CHARACTER_MAXIMUM_LENGTH": 255,
            },
            {
                "TABLE_CATALOG": "prod",
                "TABLE_SCHEMA": "raw",
                "TABLE_NAME": "orders",
                "COLUMN_NAME": "note",
                "DATA_TYPE": "TEXT",
                "IS_NULLABLE": "YES",
                "ORDINAL_POSITION": 4,
                "CHARACTER_MAXIMUM_LENGTH": 16777216,
            },
            {
                "TABLE_CATALOG": "prod",
                "TABLE_SCHEMA": "raw",
                "TABLE_NAME": "orders",
                "COLUMN_NAME": "price",
                "DATA_TYPE": "FLOAT",
                "IS_NULLABLE": "YES",
                "ORDINAL_POSITION": 5,
                "NUMERIC_PRECISION": None,
                "NUMERIC_SCALE": None,
            },
        ]

        snapshot = SchemaSnapshot.from_rows(rows, captured_at=CAPTURED_AT, source="information_schema")

        (table,) = snapshot.tables
        assert table.fqn == "PROD.RAW.ORDERS"
        assert table.columns == (
            ColumnSchema("ID", "NUMBER(38,0)", False, 1),
            ColumnSchema("AMOUNT", "NUMBER(10,2)", True, 2),
            ColumnSchema("STATUS", "VARCHAR(255)", True, 3),
            ColumnSchema("NOTE", "TEXT", True, 4),
            ColumnSchema("PRICE", "FLOAT", True, 5),
        )

    def test_lower_case_keys_and_sequences(self) -> None:
        rows: list[object] = [
            {
                "table_catalog": "PROD",
                "table_schema": "RAW",
                "table_name": "CUSTOMERS",
                "column_name": "ID",
                "data_type": "NUMBER",
                "is_nullable": "NO",
                "ordinal_position": 1,
                "numeric_precision": 38,
                "numeric_scale": 0,
            },
            ("PROD", "RAW", "CUSTOMERS", "EMAIL", "TEXT", "YES", 2),
            ("PROD", "RAW", "ADDRESSES", "ZIP", "VARCHAR", "YES", 1, None, None, 10),
        ]

        snapshot = SchemaSnapshot.from_rows(rows, captured_at=CAPTURED_AT)  # type: ignore[arg-type]

        assert [table.key for table in snapshot.tables] == ["RAW.ADDRESSES", "RAW.CUSTOMERS"]
        assert snapshot.tables[0].columns == (ColumnSchema("ZIP", "VARCHAR(10)", True, 1),)
        assert snapshot.tables[1].columns == (
            ColumnSchema("ID", "NUMBER(38,0)", False, 1),
            ColumnSchema("EMAIL", "TEXT", True, 2),
        )

    def test_missing_required_value_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="ORDINAL_POSITION"):
            SchemaSnapshot.from_rows([("PROD", "RAW", "T", "C", "TEXT", "YES")], captured_at=CAPTURED_AT)

    def test_rows_and_hand_built_snapshot_diff_clean(self) -> None:
        rows = [
            ("PROD", "RAW", "CUSTOMERS", "ID", "NUMBER", "YES", 1, 38, 0, None),
            ("PROD", "RAW", "CUSTOMERS", "NAME", "TEXT", "YES", 2, None, None, 16777216),
            ("PROD", "RAW", "CUSTOMERS", "EMAIL", "TEXT", "YES", 3, None, None, None),
        ]

        current = SchemaSnapshot.from_rows(rows, captured_at=CAPTURED_AT)

        assert diff_snapshots(_snapshot(CUSTOMERS), current).status == "clean"


class TestDiff:
    @pytest.mark.parametrize(
        ("baseline", "current", "expected"),
        [
            pytest.param(
                (ORDERS,),
                (
                    _table(
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
                    _table(
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
                    _table(
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
                    _table(
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
                (ORDERS, _table("RAW.PRODUCTS", ("SKU", "VARCHAR"))),
                (ORDERS,),
                ["raw.products was removed."],
                id="table-removed",
            ),
            pytest.param(
                (ORDERS,),
                (ORDERS, _table("RAW.REFUNDS", ("ID", "NUMBER(38,0)"))),
                ["raw.refunds was added."],
                id="table-added",
            ),
        ],
    )
    def test_event_messages(
        self, baseline: tuple[TableSchema, ...], current: tuple[TableSchema, ...], expected: list[str]
    ) -> None:
        report = diff_snapshots(_snapshot(*baseline), _snapshot(*current))

        assert report.status == "drift_detected"
        assert _messages(report) == expected

    def test_column_rename_inferred(self) -> None:
        current = _table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "NUMBER(10,2)"),
            ("EMAIL_ADDRESS", "TEXT"),
            ("STATUS", "VARCHAR"),
        )

        report = diff_snapshots(_snapshot(ORDERS), _snapshot(current))

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
        current = _table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "NUMBER(10,2)"),
            ("EMAIL_ADDRESS", "NUMBER(38,0)"),
            ("STATUS", "VARCHAR"),
        )

        report = diff_snapshots(_snapshot(ORDERS), _snapshot(current))

        assert [event.kind for event in report.events] == ["column_removed", "column_added"]
        assert _messages(report) == [
            "raw.orders lost column CUSTOMER_EMAIL.",
            "raw.orders gained column EMAIL_ADDRESS (NUMBER(38,0)).",
        ]

    def test_same_type_alone_is_not_a_rename(self) -> None:
        baseline = _table("RAW.T", ("ID", "NUMBER(38,0)"), ("LEGACY_FLAG", "VARCHAR"), ("NOTE", "VARCHAR"))
        current = _table("RAW.T", ("ID", "NUMBER(38,0)"), ("NOTE", "VARCHAR"), ("ZIP", "VARCHAR"))

        report = diff_snapshots(_snapshot(baseline), _snapshot(current))

        assert [(event.kind, event.column) for event in report.events] == [
            ("column_removed", "LEGACY_FLAG"),
            ("column_added", "ZIP"),
        ]

    def test_two_renames_on_one_table_pair_correctly(self) -> None:
        baseline = _table(
            "RAW.CUSTOMERS",
            ("ID", "NUMBER(38,0)"),
            ("CUSTOMER_EMAIL", "VARCHAR"),
            ("CUSTOMER_NAME", "VARCHAR"),
            ("SIGNUP", "DATE"),
        )
        current = _table(
            "RAW.CUSTOMERS",
            ("ID", "NUMBER(38,0)"),
            ("EMAIL_ADDRESS", "VARCHAR"),
            ("FULL_NAME", "VARCHAR"),
            ("SIGNUP", "DATE"),
        )

        report = diff_snapshots(_snapshot(baseline), _snapshot(current))

        assert [(event.kind, event.column, event.new_column) for event in report.events] == [
            ("column_renamed", "CUSTOMER_EMAIL", "EMAIL_ADDRESS"),
            ("column_renamed", "CUSTOMER_NAME", "FULL_NAME"),
        ]
        assert all(event.confidence is not None and event.confidence >= 0.5 for event in report.events)

    def test_renamed_column_that_became_not_null(self) -> None:
        baseline = _table("RAW.T", ("ID", "NUMBER(38,0)"), ("OLD_CODE", "VARCHAR", True))
        current = _table("RAW.T", ("ID", "NUMBER(38,0)"), ("NEW_CODE", "VARCHAR", False))

        report = diff_snapshots(_snapshot(baseline), _snapshot(current))

        assert [(event.kind, event.column) for event in report.events] == [
            ("column_renamed", "OLD_CODE"),
            ("column_nullability_changed", "NEW_CODE"),
        ]

    def test_table_rename_inferred(self) -> None:
        clients = TableSchema("PROD", "RAW", "CLIENTS", CUSTOMERS.columns)

        report = diff_snapshots(_snapshot(ORDERS, CUSTOMERS), _snapshot(ORDERS, clients))

        (event,) = report.events
        assert (event.kind, event.table, event.new_table) == ("table_renamed", "RAW.CUSTOMERS", "RAW.CLIENTS")
        assert event.confidence == 0.93
        assert event.message == (
            "raw.customers was renamed to raw.clients "
            "(confidence 0.93: same columns 3/3 by name and type; name similarity 0.25)."
        )

    def test_table_rename_carries_its_column_changes(self) -> None:
        wide = _table("RAW.CUSTOMERS", *[(f"COL_{index}", "VARCHAR") for index in range(10)])
        renamed = _table(
            "RAW.CLIENTS", *[(f"COL_{index}", "VARCHAR") for index in range(9)], ("EXTRA", "DATE")
        )

        report = diff_snapshots(_snapshot(wide), _snapshot(renamed))

        assert [(event.kind, event.table) for event in report.events] == [
            ("column_removed", "RAW.CLIENTS"),
            ("column_added", "RAW.CLIENTS"),
            ("table_renamed", "RAW.CUSTOMERS"),
        ]

    def test_tables_with_little_overlap_are_not_renamed(self) -> None:
        products = _table("RAW.PRODUCTS", ("SKU", "VARCHAR"), ("PRICE", "NUMBER(10,2)"))

        report = diff_snapshots(_snapshot(CUSTOMERS), _snapshot(products))

        assert [event.kind for event in report.events] == ["table_removed", "table_added"]

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
            _snapshot(_table("RAW.T", ("C", old_type))), _snapshot(_table("RAW.T", ("C", new_type)))
        )

        assert (report.status, report.events, report.headline) == ("clean", (), "clean")
        assert report.fingerprint == ""

    def test_clone_in_another_database_is_clean(self) -> None:
        clone = TableSchema("PROD_CLONE", ORDERS.schema, ORDERS.name, ORDERS.columns)

        report = diff_snapshots(_snapshot(ORDERS), _snapshot(clone))

        assert report.status == "clean"
        assert report.baseline_hash != report.current_hash

    def test_same_key_in_two_databases_is_rejected(self) -> None:
        twice = _snapshot(ORDERS, TableSchema("OTHER", "RAW", "ORDERS", ()))

        with pytest.raises(ValueError, match=r"RAW\.ORDERS twice"):
            diff_snapshots(_snapshot(ORDERS), twice)

    def test_events_sorted_by_table_then_kind_then_column(self) -> None:
        baseline = _snapshot(
            _table("RAW.A", ("X", "VARCHAR"), ("Y", "VARCHAR")),
            _table("RAW.B", ("ID", "NUMBER(38,0)")),
        )
        current = _snapshot(
            _table("RAW.A", ("Y", "NUMBER(38,0)"), ("Z", "DATE"), ("W", "DATE")),
            _table("RAW.C", ("SKU", "VARCHAR")),
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
        report = diff_snapshots(_snapshot(ORDERS), _snapshot(ORDERS, CUSTOMERS))

        assert report.headline == "drift detected (1 change)"

    def test_large_snapshot(self) -> None:
        columns = [(f"COLUMN_{index:02d}", "NUMBER(38,0)" if index % 2 else "VARCHAR") for index in range(20)]
        baseline = _snapshot(*[_table(f"RAW.TABLE_{index:03d}", *columns) for index in range(500)])
        changed_columns = [*columns[:19], ("COLUMN_19", "FLOAT"), ("NEW_COLUMN", "DATE")]
        current_tables = [
            _table(f"RAW.TABLE_{index:03d}", *(changed_columns if index % 10 == 0 else columns))
            for index in range(5, 500)
        ]
        current_tables.append(_table("RAW.BRAND_NEW", ("ONLY", "BOOLEAN")))

        report = diff_snapshots(baseline, _snapshot(*current_tables))

        kinds = [event.kind for event in report.events]
        assert kinds.count("table_removed") == 5
        assert kinds.count("table_added") == 1
        assert kinds.count("column_type_changed") == 49
        assert kinds.count("column_added") == 49
        assert len(report.events) == 104


class TestExpectedTables:
    def test_declared_source_never_seen(self) -> None:
        report = diff_snapshots(_snapshot(ORDERS), _snapshot(ORDERS), expected_tables=["raw.x", "RAW.ORDERS"])

        assert report.status == "drift_detected"
        assert _messages(report) == ["raw.x is declared as a source but was not found."]

    def test_declared_source_in_baseline_is_removed_not_missing(self) -> None:
        report = diff_snapshots(
            _snapshot(ORDERS, CUSTOMERS), _snapshot(ORDERS), expected_tables=["RAW.CUSTOMERS"]
        )

        assert [event.kind for event in report.events] == ["table_removed"]

    def test_three_part_names_match_by_schema_and_table(self) -> None:
        report = diff_snapshots(None, _snapshot(ORDERS), expected_tables=["PROD.RAW.ORDERS", "PROD.RAW.X"])

        assert [(event.kind, event.table) for event in report.events] == [("table_not_found", "RAW.X")]

    def test_no_baseline(self) -> None:
        report = diff_snapshots(None, _snapshot(ORDERS), expected_tables=["RAW.ORDERS", "RAW.MISSING"])

        assert report.status == "no_baseline"
        assert report.headline == "no baseline"
        assert report.baseline_hash is None
        assert report.current_hash == _snapshot(ORDERS).content_hash
        assert _messages(report) == ["raw.missing is declared as a source but was not found."]

    def test_no_baseline_without_expectations_has_no_events(self) -> None:
        report = diff_snapshots(None, _snapshot(ORDERS))

        assert (report.status, report.events, report.fingerprint) == ("no_baseline", (), "")


class TestFingerprint:
    @staticmethod
    def _report(captured_at: str = CAPTURED_AT) -> DriftReport:
        current = _table(
            "RAW.ORDERS",
            ("ID", "NUMBER(38,0)", False),
            ("AMOUNT", "VARCHAR"),
            ("STATUS", "VARCHAR"),
            ("DISCOUNT", "NUMBER(38,0)"),
        )
        return diff_snapshots(
            _snapshot(ORDERS, CUSTOMERS, captured_at=captured_at),
            _snapshot(current, captured_at=captured_at),
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
        other = diff_snapshots(_snapshot(ORDERS), _snapshot(CUSTOMERS))

        assert other.fingerprint != self._report().fingerprint
        assert other.fingerprint


class TestModel:
    def test_report_round_trip_through_json(self) -> None:
        clients = TableSchema("PROD", "RAW", "CLIENTS", CUSTOMERS.columns)
        report = diff_snapshots(
            _snapshot(ORDERS, CUSTOMERS), _snapshot(clients), expected_tables=["RAW.NOPE"]
        )

        payload = json.loads(json.dumps(report.to_dict()))
        restored = DriftReport.from_dict(payload)

        assert restored == report
        assert payload["headline"] == report.headline == "drift detected (3 changes)"
        assert payload["fingerprint"] == report.fingerprint
        assert [event["message"] for event in payload["events"]] == _messages(report)

    def test_event_round_trip(self) -> None:
        event = DriftEvent(
            kind="column_type_changed", table="RAW.ORDERS", column="AMOUNT", old_type="A", new_type="B"
        )

        assert DriftEvent.from_dict(event.to_dict()) == event

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            pytest.param(
                {"kind": "column_moved", "table": "RAW.T"}, "kind must be one of", id="unknown-kind"
            ),
            pytest.param(
                {"kind": "column_renamed", "table": "RAW.T", "confidence": 1.5},
                "confidence",
                id="confidence-range",
            ),
        ],
    )
    def test_invalid_event_rejected(self, fields: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            DriftEvent(**fields)  # type: ignore[arg-type]

    def test_invalid_status_rejected(self) -> None:
        with pytest.raises(ValueError, match="status must be one of"):
            DriftReport(status="dirty", events=(), baseline_hash=None, current_hash="c")

    def test_every_kind_has_a_message(self) -> None:
        messages = {
            kind: DriftEvent(kind=kind, table="RAW.T", column="C", new_type="DATE", new_table="RAW.U").message
            for kind in EVENT_KINDS
        }

        assert len(set(messages.values())) == len(EVENT_KINDS)
        assert all(message.startswith("raw.t") and message.endswith(".") for message in messages.values())

    def test_policy_values(self) -> None:
        assert [policy.value for policy in DriftPolicy] == ["fail", "warn", "report"]
        assert DriftPolicy("warn") is DriftPolicy.WARN
