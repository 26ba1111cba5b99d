"""The source rewrite and the isolation check that keep a validation build inside its clone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.hooks.dbt import isolation_problems, rewrite_source_databases

if TYPE_CHECKING:
    from pathlib import Path

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
SOURCES_YML = """\
version: 2

sources:
  - name: raw  # landed by the ingestion job
    database: DEMO
    schema: RAW
    tables:
      - name: orders
  - name: shared
    database: REFERENCE_DATA
    schema: PUBLIC
    tables:
      - name: countries
  - name: templated
    database: "{{ env_var('RAW_DB', 'DEMO') }}"
    schema: RAW
    tables:
      - name: payments
"""


class TestSourceRewrite:
    def test_literal_production_sources_point_at_the_clone(self, tmp_path: Path) -> None:
        (tmp_path / "models").mkdir()
        sources = tmp_path / "models" / "_sources.yml"
        sources.write_text(SOURCES_YML)
        (tmp_path / "target").mkdir()
        (tmp_path / "target" / "_sources.yml").write_text(SOURCES_YML)

        rewrites = rewrite_source_databases(tmp_path, prod_database="DEMO", clone_database=CLONE)

        assert rewrites == [{"file": "models/_sources.yml", "source": "raw", "from": "DEMO", "to": CLONE}]
        databases = {
            item["name"]: item["database"] for item in yaml.safe_load(sources.read_text())["sources"]
        }
        assert databases == {
            "raw": CLONE,
            "shared": "REFERENCE_DATA",
            "templated": "{{ env_var('RAW_DB', 'DEMO') }}",
        }
        assert (tmp_path / "target" / "_sources.yml").read_text() == SOURCES_YML

    def test_sources_named_after_parsing_are_rewritten(self, tmp_path: Path) -> None:
        (tmp_path / "_sources.yml").write_text(SOURCES_YML)
        rewrites = rewrite_source_databases(
            tmp_path, prod_database="DEMO", clone_database=CLONE, only=[("_sources.yml", "templated")]
        )
        assert [item["source"] for item in rewrites] == ["templated"]
        databases = {
            item["name"]: item["database"]
            for item in yaml.safe_load((tmp_path / "_sources.yml").read_text())["sources"]
        }
        assert databases["templated"] == CLONE
        assert databases["raw"] == "DEMO"


class TestIsolationProblems:
    def _node(self, unique_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "unique_id": unique_id,
            "resource_type": unique_id.split(".")[0],
            "database": CLONE,
            "materialized": "view",
            "hooks": [],
            **fields,
        }

    def test_isolated_project_has_none(self) -> None:
        summary = {
            "sources": [{"unique_id": "source.shop.raw.orders", "database": CLONE}],
            "nodes": [
                self._node("model.shop.stg_orders"),
                self._node("test.shop.unique_x"),
                self._node("model.shop.eph", database="DEMO", materialized="ephemeral"),
                self._node("model.shop.grants", hooks=["grant select on {{ this }} to role reporter"]),
            ],
        }
        assert isolation_problems(summary, clone_database=CLONE, prod_database="DEMO") == []

    def test_every_escape_is_named(self) -> None:
        summary = {
            "sources": [{"unique_id": "source.shop.raw.orders", "database": "demo"}],
            "nodes": [
                self._node("model.shop.fct", database="DEMO"),
                self._node("seed.shop.countries", database="OTHER_DB"),
                self._node("model.shop.audit", hooks=["insert into DEMO.AUDIT.LOG select 1"]),
                self._node(
                    "operation.shop.shop-on-run-end-0",
                    resource_type="operation",
                    hooks=["delete from demo.raw.orders"],
                ),
            ],
        }
        assert isolation_problems(summary, clone_database=CLONE, prod_database="DEMO") == [
            "source.shop.raw.orders still reads the production database DEMO",
            "model.shop.fct would build into 'DEMO', not the clone",
            "seed.shop.countries would build into 'OTHER_DB', not the clone",
            "model.shop.audit has a hook naming production: DEMO.AUDIT.LOG",
            "operation.shop.shop-on-run-end-0 has a hook naming production: DEMO.RAW.ORDERS",
        ]
