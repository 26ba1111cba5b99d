from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from airflow_selfheal.core.guards import assert_read_only
from airflow_selfheal.hooks.probes import (
    columns_sql,
    compare_relation,
    jsonable,
    null_counts_sql,
    row_count_sql,
    sample_sql,
)


class TestStatements:
    def test_columns(self) -> None:
        assert columns_sql("DEMO__SELFHEAL_X", "RAW", "O'RDERS", limit=50) == (
            'SELECT COLUMN_NAME, DATA_TYPE, IS_NULLABLE FROM "DEMO__SELFHEAL_X".INFORMATION_SCHEMA.COLUMNS '
            "WHERE TABLE_SCHEMA = 'RAW' AND TABLE_NAME = 'O\\'RDERS' ORDER BY ORDINAL_POSITION NULLS FIRST LIMIT 50"
        )

    def test_row_count_and_sample(self) -> None:
        assert (
            row_count_sql("DB", "RAW", "ORDERS")
            == 'SELECT COUNT(*) AS ROW_COUNT FROM "DB"."RAW"."ORDERS" LIMIT 1'
        )
        assert sample_sql("DB", "RAW", 'x"y') == 'SELECT * FROM "DB"."RAW"."x""y" LIMIT 20'

    def test_null_counts_scan_a_bounded_subquery(self) -> None:
        assert null_counts_sql("DB", "RAW", "ORDERS", ["ID", "Email"], scan_rows=1000) == (
            'SELECT COUNT(*), COUNT(*) - COUNT("ID"), COUNT(*) - COUNT("Email") '
            'FROM (SELECT "ID", "Email" FROM "DB"."RAW"."ORDERS" LIMIT 1000) AS SCANNED LIMIT 1'
        )

    @pytest.mark.parametrize(
        "sql",
        [
            pytest.param(columns_sql("D", "S", "T"), id="columns"),
            pytest.param(row_count_sql("D", "S", "T"), id="count"),
            pytest.param(sample_sql("D", "S", "T"), id="sample"),
            pytest.param(null_counts_sql("D", "S", "T", ["A"]), id="nulls"),
        ],
    )
    def test_every_statement_passes_the_guard_and_has_a_limit(self, sql: str) -> None:
        assert_read_only(sql)
        assert " LIMIT " in sql

    def test_hostile_names_stay_identifiers(self) -> None:
        sql = sample_sql("DB", "RAW", 'T"; drop table x; --')
        assert sql == 'SELECT * FROM "DB"."RAW"."T""; drop table x; --" LIMIT 20'
        assert_read_only(sql)


class TestJsonable:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param(Decimal("10.50"), "10.50", id="decimal"),
            pytest.param(dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02T03:04:05", id="datetime"),
            pytest.param(dt.date(2026, 1, 2), "2026-01-02", id="date"),
            pytest.param(float("nan"), "nan", id="nan"),
            pytest.param(b"\x00\x01", "base64:AAE=", id="bytes"),
            pytest.param(7, 7, id="int"),
            pytest.param(None, None, id="none"),
            pytest.param("token=abc123", "token=***REDACTED***", id="secret"),
        ],
    )
    def test_values(self, value: object, expected: object) -> None:
        assert jsonable(value) == expected

    def test_long_text_is_cut(self) -> None:
        assert jsonable("x" * 10_000) == "x" * 199 + "…"


class TestCompareRelation:
    def _side(self, columns: dict[str, str], rows: int) -> dict[str, object]:
        return {"database": "D", "columns": list(columns), "types": columns, "row_count": rows}

    def test_absent_in_prod_is_new(self) -> None:
        assert compare_relation(self._side({"A": "NUMBER"}, 3), None)["status"] == "new"

    def test_absent_in_clone(self) -> None:
        assert compare_relation(None, self._side({"A": "NUMBER"}, 3))["status"] == "missing_in_clone"

    def test_same(self) -> None:
        entry = compare_relation(self._side({"A": "NUMBER"}, 3), self._side({"A": "NUMBER"}, 3))
        assert (entry["status"], entry["row_count_delta"]) == ("same", 0)

    def test_changed_columns_types_and_rows(self) -> None:
        entry = compare_relation(
            self._side({"A": "TEXT", "NEW": "TEXT"}, 5), self._side({"A": "NUMBER", "OLD": "TEXT"}, 3)
        )
        assert entry["status"] == "changed"
        assert entry["columns_added"] == ["NEW"]
        assert entry["columns_removed"] == ["OLD"]
        assert entry["type_changes"] == {"A": {"prod": "NUMBER", "clone": "TEXT"}}
        assert entry["row_count_delta"] == 2

    def test_unreadable_side_is_an_error(self) -> None:
        broken = {"database": "D", "columns": ["A"], "types": {"A": "TEXT"}, "error": "Binder Error"}
        entry = compare_relation(self._side({"A": "TEXT"}, 3), broken)
        assert entry["status"] == "error"
        assert "row_count_delta" not in entry
