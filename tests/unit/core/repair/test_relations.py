"""Relations of the manifest a repair touches."""

from __future__ import annotations

from typing import Any

from airflow_selfheal.core.repair.relations import failed_relations, model_relations, probe_targets


def test_model_relations() -> None:
    manifest = {
        "nodes": {
            "model.p.stg_orders": {"resource_type": "model", "schema": "analytics", "name": "stg_orders"},
            "model.p.fct": {
                "resource_type": "model",
                "schema": "analytics",
                "name": "fct",
                "alias": "fct_orders",
            },
            "test.p.t": {"resource_type": "test", "schema": "analytics", "name": "t"},
        }
    }
    ids = ["test.p.t", "model.p.fct", "model.p.stg_orders", "model.p.gone"]
    assert model_relations(manifest, ids) == ["ANALYTICS.FCT_ORDERS", "ANALYTICS.STG_ORDERS"]


def test_probe_targets_inputs_outputs_and_one_level_downstream() -> None:
    manifest = {
        "sources": {
            "source.p.raw.orders": {
                "resource_type": "source",
                "schema": "raw",
                "name": "orders",
                "identifier": "ORDERS",
            }
        },
        "nodes": {
            "model.p.stg_orders": {"resource_type": "model", "schema": "analytics", "name": "stg_orders"},
            "model.p.fct": {
                "resource_type": "model",
                "schema": "analytics",
                "name": "fct",
                "alias": "fct_orders",
            },
            "model.p.rpt": {"resource_type": "model", "schema": "reports", "name": "rpt"},
            "test.p.not_null": {"resource_type": "test", "schema": "analytics", "name": "not_null"},
        },
        "parent_map": {
            "model.p.stg_orders": ["source.p.raw.orders"],
            "model.p.fct": ["model.p.stg_orders"],
            "model.p.rpt": ["model.p.fct"],
            "test.p.not_null": ["model.p.stg_orders"],
        },
        "child_map": {
            "source.p.raw.orders": ["model.p.stg_orders"],
            "model.p.stg_orders": ["model.p.fct", "test.p.not_null"],
            "model.p.fct": ["model.p.rpt"],
        },
    }
    expected = {
        "inputs": ["RAW.ORDERS"],
        "outputs": ["ANALYTICS.STG_ORDERS"],
        "downstream": ["ANALYTICS.FCT_ORDERS"],
    }
    assert probe_targets(manifest, ["model.p.stg_orders"]) == expected
    # A failed test is probed through the model it tests; the test itself is not a relation.
    assert probe_targets(manifest, ["test.p.not_null"]) == expected


def test_failed_relations_start_from_what_a_failed_test_tests() -> None:
    """A renamed source fails its source test first: the models reading that source are broken in prod too."""

    def model(name: str) -> dict[str, Any]:
        return {"resource_type": "model", "schema": "analytics", "name": name}

    manifest = {
        "nodes": {
            "model.p.stg_products": model("stg_products"),
            "model.p.int_items": model("int_items"),
            "model.p.stg_orders": model("stg_orders"),
            "test.p.source_unique_raw_products_id": {
                "resource_type": "test",
                "schema": "analytics",
                "name": "t",
            },
        },
        "parent_map": {"test.p.source_unique_raw_products_id": ["source.p.raw.products"]},
        "child_map": {
            "source.p.raw.products": ["model.p.stg_products", "test.p.source_unique_raw_products_id"],
            "model.p.stg_products": ["model.p.int_items"],
            "source.p.raw.orders": ["model.p.stg_orders"],
        },
    }
    incident = {"nodes": [{"unique_id": "test.p.source_unique_raw_products_id"}]}
    assert failed_relations(incident, manifest) == ["ANALYTICS.INT_ITEMS", "ANALYTICS.STG_PRODUCTS"]
    model_failed = {"nodes": [{"unique_id": "model.p.stg_products"}]}
    assert failed_relations(model_failed, manifest) == ["ANALYTICS.INT_ITEMS", "ANALYTICS.STG_PRODUCTS"]
