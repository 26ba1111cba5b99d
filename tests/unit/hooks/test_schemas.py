"""Which source tables a drift check watches, and how a snapshot is read: one metadata query per database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks.schemas import capture_snapshot, connection_database, resolve_targets
from dev.failure_contexts import MANIFEST

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path


class FakeHook:
    """The parts of ``SelfhealSnowflakeHook`` the capture uses; records each metadata query."""

    def __init__(self, columns: dict[str, list[dict[str, Any]]], source: str = "information_schema") -> None:
        self.columns = columns
        self.source = source
        self.queries: list[tuple[str, list[str]]] = []
        self.conn_params: dict[str, Any] = {"database": "DEMO"}

    def fetch_columns(self, database: str, schemas: Sequence[str]) -> tuple[list[dict[str, Any]], str]:
        self.queries.append((database, list(schemas)))
        rows = [row for row in self.columns.get(database, []) if row["TABLE_SCHEMA"] in schemas]
        return rows, self.source


def column(database: str, schema: str, table: str, name: str, position: int = 1) -> dict[str, Any]:
    return {
        "TABLE_CATALOG": database,
        "TABLE_SCHEMA": schema,
        "TABLE_NAME": table,
        "COLUMN_NAME": name,
        "ORDINAL_POSITION": position,
        "DATA_TYPE": "TEXT",
        "IS_NULLABLE": "YES",
    }


class TestResolveTargets:
    def test_explicit_tables_take_the_connection_database_and_are_deduplicated(self) -> None:
        targets = resolve_targets(
            manifest_path=None,
            tables=["raw.orders", "DEMO.RAW.ORDERS", "OTHER.RAW.CUSTOMERS"],
            default_database="demo",
        )
        assert targets == [("DEMO", "RAW", "ORDERS"), ("OTHER", "RAW", "CUSTOMERS")]

    @pytest.mark.parametrize(
        ("tables", "database"),
        [
            pytest.param(["RAW.ORDERS"], None, id="two-parts-no-database"),
            pytest.param(["ORDERS"], "DEMO", id="one-part"),
            pytest.param(["A.B.C.D"], "DEMO", id="four-parts"),
        ],
    )
    def test_a_name_that_is_not_three_parts_is_refused(self, tables: list[str], database: str | None) -> None:
        with pytest.raises(ValueError, match="must be DATABASE.SCHEMA.TABLE"):
            resolve_targets(manifest_path=None, tables=tables, default_database=database)

    def test_the_manifest_sources_are_watched(self, tmp_path: Path) -> None:
        manifest = tmp_path / "manifest.json"
        manifest.write_text(json.dumps(MANIFEST))
        assert resolve_targets(manifest_path=str(manifest), tables=None, default_database=None) == [
            ("DEMO", "RAW", "ORDERS")
        ]

    def test_neither_tables_nor_manifest_is_refused(self) -> None:
        with pytest.raises(ValueError, match="give either `tables` or `manifest_path`"):
            resolve_targets(manifest_path=None, tables=None, default_database="DEMO")


class TestCaptureSnapshot:
    def test_whole_schemas_one_query_per_database(self) -> None:
        hook = FakeHook(
            {
                "DEMO": [
                    column("DEMO", "RAW", "ORDERS", "ORDER_ID"),
                    column("DEMO", "RAW", "CUSTOMERS", "CUSTOMER_ID"),
                    column("DEMO", "STAGING", "ORDERS", "ORDER_ID"),
                    column("DEMO", "UNWATCHED", "T", "X"),
                ],
                "OTHER": [column("OTHER", "RAW", "PAYMENTS", "PAYMENT_ID")],
            }
        )
        targets = [("DEMO", "RAW", "ORDERS"), ("DEMO", "STAGING", "ORDERS"), ("OTHER", "RAW", "PAYMENTS")]

        snapshot = capture_snapshot(hook, targets)  # type: ignore[arg-type]

        assert hook.queries == [("DEMO", ["RAW", "STAGING"]), ("OTHER", ["RAW"])]
        # The untargeted CUSTOMERS table of a watched schema is captured too: a new or renamed table is seen.
        assert {(t.database, t.schema, t.name) for t in snapshot.tables} == {
            ("DEMO", "RAW", "ORDERS"),
            ("DEMO", "RAW", "CUSTOMERS"),
            ("DEMO", "STAGING", "ORDERS"),
            ("OTHER", "RAW", "PAYMENTS"),
        }
        assert snapshot.source == "information_schema"

    def test_the_show_columns_fallback_is_recorded(self) -> None:
        hook = FakeHook({"DEMO": [column("DEMO", "RAW", "ORDERS", "ORDER_ID")]}, source="show_columns")
        snapshot = capture_snapshot(hook, [("DEMO", "RAW", "ORDERS")])  # type: ignore[arg-type]
        assert snapshot.source == "show_columns"


class TestConnectionDatabase:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            pytest.param({"database": "DEMO"}, "DEMO", id="named"),
            pytest.param({"database": ""}, None, id="empty"),
            pytest.param({}, None, id="absent"),
        ],
    )
    def test_database_of_the_connection(self, params: dict[str, Any], expected: str | None) -> None:
        hook = FakeHook({})
        hook.conn_params = params
        assert connection_database(hook) == expected  # type: ignore[arg-type]
