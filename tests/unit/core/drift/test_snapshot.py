from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.drift import ColumnSchema, SchemaSnapshot, TableSchema, diff_snapshots
from tests.unit.core.drift.samples import CAPTURED_AT, CUSTOMERS, ORDERS, make_snapshot, make_table


class TestSnapshot:
    def test_key_and_fqn_are_upper_case(self) -> None:
        table = TableSchema(database="prod", schema="raw", name="orders", columns=())

        assert (table.key, table.fqn) == ("RAW.ORDERS", "PROD.RAW.ORDERS")

    def test_round_trip_through_json(self) -> None:
        snapshot = make_snapshot(ORDERS, CUSTOMERS)

        restored = SchemaSnapshot.from_dict(json.loads(json.dumps(snapshot.to_dict())))

        assert restored.to_dict() == snapshot.to_dict()
        assert restored.content_hash == snapshot.content_hash

    def test_to_dict_order_is_stable(self) -> None:
        reversed_columns = TableSchema("PROD", "RAW", "ORDERS", tuple(reversed(ORDERS.columns)))

        first = make_snapshot(ORDERS, CUSTOMERS).to_dict()
        second = make_snapshot(CUSTOMERS, reversed_columns).to_dict()

        assert first == second
        assert [table["name"] for table in first["tables"]] == ["CUSTOMERS", "ORDERS"]

    def test_content_hash_ignores_captured_at(self) -> None:
        early = make_snapshot(ORDERS, captured_at="2025-01-01T00:00:00Z")
        late = make_snapshot(ORDERS, captured_at="2025-06-01T12:00:00Z")

        assert early.content_hash == late.content_hash
        assert len(early.content_hash) == 64

    def test_content_hash_changes_with_schema(self) -> None:
        changed = make_table("RAW.ORDERS", ("ID", "NUMBER(38,0)", False))

        assert make_snapshot(ORDERS).content_hash != make_snapshot(changed).content_hash

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

        assert diff_snapshots(make_snapshot(CUSTOMERS), current).status == "clean"
