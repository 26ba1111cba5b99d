"""The drift page, from a diff of two hand-built snapshots: the breaking changes, counted and deduplicated."""

from __future__ import annotations

from typing import Any

from airflow_selfheal.core.drift import SchemaSnapshot, diff_snapshots
from airflow_selfheal.core.pages.drift import drift_page

CAPTURED_AT = "2026-03-01T06:00:00+00:00"


def snapshot(*columns: tuple[str, str]) -> SchemaSnapshot:
    rows: list[dict[str, Any]] = [
        {
            "TABLE_CATALOG": "DEMO",
            "TABLE_SCHEMA": "RAW",
            "TABLE_NAME": "ORDERS",
            "COLUMN_NAME": name,
            "ORDINAL_POSITION": position,
            "DATA_TYPE": data_type,
            "IS_NULLABLE": "YES",
        }
        for position, (name, data_type) in enumerate(columns, start=1)
    ]
    return SchemaSnapshot.from_rows(rows, captured_at=CAPTURED_AT)


BASELINE = snapshot(("ORDER_ID", "NUMBER"), ("CUSTOMER_EMAIL", "TEXT"), ("STATUS", "TEXT"))


class TestDriftPage:
    def test_breaking_changes_are_the_page(self) -> None:
        report = diff_snapshots(BASELINE, snapshot(("ORDER_ID", "NUMBER"), ("STATUS", "TEXT")))
        assert report.breaking_events

        page = drift_page("shop_raw", report, "v1", pipeline="shop_pipeline")

        assert page.title == f"Source schema drift for shop_raw: {report.headline}"
        assert (page.severity, page.dedup_key) == ("warning", f"drift-shop_raw-{report.fingerprint}")
        ((heading, body),) = page.sections
        assert heading == "Changes"
        assert body.splitlines() == [f"• {event.message}" for event in report.breaking_events]
        assert dict(page.details) == {
            "baseline": "shop_raw",
            "baseline_version": "v1",
            "pipeline": "shop_pipeline",
            "changes": len(report.breaking_events),
            "non_breaking_changes": len(report.non_breaking_events),
            "fingerprint": report.fingerprint,
        }
        assert (page.group, page.component) == ("shop_pipeline", "shop_raw")

    def test_same_changes_same_dedup_key_other_changes_another(self) -> None:
        dropped = diff_snapshots(BASELINE, snapshot(("ORDER_ID", "NUMBER"), ("STATUS", "TEXT")))
        again = diff_snapshots(BASELINE, snapshot(("ORDER_ID", "NUMBER"), ("STATUS", "TEXT")))
        other = diff_snapshots(BASELINE, snapshot(("ORDER_ID", "NUMBER"), ("CUSTOMER_EMAIL", "TEXT")))
        key = drift_page("shop_raw", dropped, "v1", pipeline="p").dedup_key
        assert drift_page("shop_raw", again, "v2", pipeline="p").dedup_key == key
        assert drift_page("shop_raw", other, "v1", pipeline="p").dedup_key != key

    def test_no_baseline_yet(self) -> None:
        report = diff_snapshots(None, BASELINE)
        page = drift_page("shop_raw", report, None, pipeline="shop_pipeline")
        assert page.details["baseline_version"] == "none"
        assert page.dedup_key == f"drift-shop_raw-{report.fingerprint or report.status}"
