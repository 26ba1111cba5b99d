from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_selfheal.core.manifest import (
    ManifestError,
    check_manifest,
    downstream,
    load_manifest,
    source_tables,
    upstream,
)

MANIFEST = {
    "nodes": {
        "model.shop.stg_orders": {"depends_on": {"nodes": ["source.shop.raw.orders"]}},
        "model.shop.fct_orders": {
            "depends_on": {"nodes": ["model.shop.stg_orders", "model.shop.stg_payments"]}
        },
        "model.shop.stg_payments": {"depends_on": {"nodes": []}},
    },
    "sources": {
        "source.shop.raw.orders": {
            "source_name": "raw",
            "name": "orders",
            "database": "demo",
            "schema": "raw",
        },
        "source.shop.raw.pay": {
            "source_name": "raw",
            "name": "pay",
            "identifier": "PAYMENTS",
            "database": "DEMO",
            "schema": "RAW",
        },
    },
}


class TestManifest:
    def test_source_tables_use_identifier_and_fold_case(self) -> None:
        tables = source_tables(MANIFEST)
        assert [(t.database, t.key, t.name) for t in tables] == [
            ("DEMO", "RAW.ORDERS", "orders"),
            ("DEMO", "RAW.PAYMENTS", "pay"),
        ]

    def test_lineage(self) -> None:
        assert upstream(MANIFEST, "model.shop.fct_orders") == (
            "model.shop.stg_orders",
            "model.shop.stg_payments",
        )
        assert downstream(MANIFEST, "model.shop.stg_orders") == ("model.shop.fct_orders",)
        assert upstream(MANIFEST, "model.shop.nope") == ()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param("{truncated", "is not valid JSON", id="truncated"),
            pytest.param("[1, 2]", "top level is list", id="not-an-object"),
            pytest.param('{"nodes": {}}', "has no 'sources' object", id="missing-section"),
        ],
    )
    def test_malformed_file_names_file_and_fix(self, tmp_path: Path, content: str, message: str) -> None:
        path = tmp_path / "manifest.json"
        path.write_text(content)
        with pytest.raises(ManifestError, match=message) as excinfo:
            load_manifest(path)
        assert "dbt parse" in str(excinfo.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestError, match="not found"):
            load_manifest(tmp_path / "absent.json")

    def test_malformed_source_is_named(self) -> None:
        broken = check_manifest({"nodes": {}, "sources": {"source.x.y.z": {"name": "z"}}})
        with pytest.raises(ManifestError, match="source.x.y.z"):
            source_tables(broken)

    def test_roundtrip_from_disk(self, tmp_path: Path) -> None:
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(MANIFEST))
        assert len(source_tables(load_manifest(path))) == 2
