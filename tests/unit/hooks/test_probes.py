from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from airflow_selfheal.core.guards import ReadOnlyViolation, read_only_sql
from airflow_selfheal.hooks import probes
from airflow_selfheal.hooks.probes import (
    MAX_COLUMNS,
    _ReadOnlySession,
    columns_sql,
    compare_relation,
    data_diff,
    jsonable,
    null_counts_sql,
    probe_relations,
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
    def test_every_statement_passes_the_guard_unchanged(self, sql: str) -> None:
        assert read_only_sql(sql, database="D", limit=MAX_COLUMNS) == sql
        assert " LIMIT " in sql

    def test_hostile_names_stay_identifiers(self) -> None:
        sql = sample_sql("DB", "RAW", 'T"; drop table x; --')
        assert sql == 'SELECT * FROM "DB"."RAW"."T""; drop table x; --" LIMIT 20'
        assert read_only_sql(sql, database="DB") == sql


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


class _Cursor:
    """Answers the four probe statements of a table (ID NUMBER, EMAIL TEXT) with three rows, one EMAIL null."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent
        self.description: list[tuple[str]] = []
        self.rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, timeout: int | None = None) -> None:
        assert timeout == probes.STATEMENT_TIMEOUT_SECONDS, "every probe is sent with a statement timeout"
        self.sent.append(sql)
        if "INFORMATION_SCHEMA.COLUMNS" in sql:
            self.rows = [("ID", "NUMBER", "NO"), ("EMAIL", "TEXT", "YES")]
        elif "AS ROW_COUNT" in sql:
            self.rows = [(3,)]
        elif " - COUNT(" in sql:
            self.rows = [(3, 0, 1)]
        else:
            self.description = [("ID",), ("EMAIL",)]
            self.rows = [(1, "a@example.com"), (2, None), (3, "c@example.com")]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return self.rows[:size]

    def close(self) -> None:
        pass


class _Connection:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self.sent)

    def close(self) -> None:
        pass


class _Hook:
    """A hook whose connection records what is sent: the statements are the observable outcome here."""

    def __init__(self) -> None:
        self.connection = _Connection()

    def get_conn(self) -> _Connection:
        return self.connection


class TestSession:
    def test_probes_send_the_guarded_text_with_its_limit(self) -> None:
        hook = _Hook()
        probes = probe_relations(hook, "DEMO__SELFHEAL_X", ["RAW.ORDERS"])  # type: ignore[arg-type]
        assert hook.connection.sent == [
            columns_sql("DEMO__SELFHEAL_X", "RAW", "ORDERS"),
            'SELECT COUNT(*) AS ROW_COUNT FROM "DEMO__SELFHEAL_X"."RAW"."ORDERS" LIMIT 1',
            'SELECT * FROM "DEMO__SELFHEAL_X"."RAW"."ORDERS" LIMIT 20',
            null_counts_sql("DEMO__SELFHEAL_X", "RAW", "ORDERS", ["ID", "EMAIL"]),
        ]
        orders = probes["relations"]["RAW.ORDERS"]
        assert orders["errors"] == {}
        assert (orders["row_count"], orders["null_counts"]) == (3, {"ID": 0, "EMAIL": 1})

    def test_the_data_diff_reads_each_side_in_its_own_database(self) -> None:
        hook = _Hook()
        diff = data_diff(hook, ["ANALYTICS.FCT_ORDERS"], "DEMO__SELFHEAL_X", "DEMO")  # type: ignore[arg-type]
        assert diff["relations"]["ANALYTICS.FCT_ORDERS"]["status"] == "same"
        assert [sql.split(" FROM ")[1].split(".")[0] for sql in hook.connection.sent] == [
            '"DEMO__SELFHEAL_X"',
            '"DEMO__SELFHEAL_X"',
            '"DEMO"',
            '"DEMO"',
        ]

    @pytest.mark.parametrize(
        ("sql", "fragment"),
        [
            pytest.param('SELECT * FROM "DEMO"."RAW"."ORDERS"', "database DEMO", id="another-database"),
            pytest.param(
                "SELECT * FROM TABLE(RESULT_SCAN(LAST_QUERY_ID()))", "RESULT_SCAN", id="result-scan"
            ),
            pytest.param("SHOW USERS", "SHOW statement", id="show"),
        ],
    )
    def test_a_refused_statement_is_never_sent(self, sql: str, fragment: str) -> None:
        hook = _Hook()
        session = _ReadOnlySession(hook)  # type: ignore[arg-type]
        with pytest.raises(ReadOnlyViolation, match=fragment):
            session.query(sql, 20, "DEMO__SELFHEAL_X")
        assert hook.connection.sent == []
        assert session.statements == []
