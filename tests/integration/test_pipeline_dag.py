"""The example cosmos pipeline in real Airflow (``dag.test()``) on the embedded warehouse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dev import airflow_env
from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration

PIPELINE = "shop_pipeline"


@pytest.fixture(scope="module")
def loaded(warehouse: Warehouse, demo_manifest: Path, airflow_db: Path) -> Warehouse:
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    return warehouse


def _run_pipeline(record: Path) -> tuple[str, dict[str, str], str]:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(airflow_env.DAGS_FOLDER))
    assert PIPELINE in dagbag.dags, dagbag.import_errors
    dag = dagbag.dags[PIPELINE]

    def recorder(context: dict[str, Any]) -> None:
        node = context.get("dbt_node_config") or {}
        with record.open("a") as handle:
            entry = {
                "task_id": context["ti"].task_id,
                "unique_id": node.get("unique_id"),
                "resource_type": str(node.get("resource_type")),
                "error": str(context.get("exception")),
            }
            handle.write(json.dumps(entry) + "\n")

    for task in dag.tasks:
        # Keep the pipeline's own callbacks (the incident capture) and listen alongside them.
        existing = task.on_failure_callback
        existing = [] if existing is None else list(existing) if isinstance(existing, list) else [existing]
        task.on_failure_callback = [*existing, recorder]
    run = dag.test()
    return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}, run.run_id


def test_shipped_dags_folder_loads_the_pipeline_and_the_repair_dag(demo_manifest: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(airflow_env.DAGS_FOLDER))
    assert dagbag.import_errors == {}
    assert {PIPELINE, "selfheal_repair"} <= set(dagbag.dags)
    repair = dagbag.dags["selfheal_repair"]
    assert repair.get_task("cleanup").is_teardown
    assert repair.max_active_runs == 1


def test_pipeline_renders_every_model_and_test(demo_manifest: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(airflow_env.DAGS_FOLDER)).dags[PIPELINE]
    manifest = json.loads(demo_manifest.read_text())
    models = [n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 8
    for model in models:
        assert f"shop.{model}.run" in dag.task_ids
    assert any(task_id.endswith(".test") for task_id in dag.task_ids)


def test_pipeline_succeeds_then_fails_on_upstream_rename(loaded: Warehouse, tmp_path: Path) -> None:
    from dev.scenarios import SCENARIOS

    record = tmp_path / "failures.jsonl"
    state, tasks, run_id = _run_pipeline(record)
    assert state == "success", tasks
    assert not record.exists()
    first_check = airflow_env.task_result(PIPELINE, run_id, "check_source_drift")
    assert first_check["status"] in ("no_baseline", "clean")  # type: ignore[index]
    snapshot = airflow_env.task_result(PIPELINE, run_id, "snapshot_sources")
    assert snapshot["tables"] == 5  # type: ignore[index]

    scenario = SCENARIOS["rename_column"]
    with loaded.connect() as conn:
        scenario.apply(conn)
    try:
        state, tasks, run_id = _run_pipeline(record)
    finally:
        with loaded.connect() as conn:
            scenario.reset(conn)

    assert state == "failed"
    failed = sorted(task for task, task_state in tasks.items() if task_state == "failed")
    assert failed == ["shop.stg_orders.run"]
    entries = [json.loads(line) for line in record.read_text().splitlines()]
    assert [e["unique_id"] for e in entries] == ["model.selfheal_demo.stg_orders"]
    assert entries[0]["resource_type"] in ("DbtResourceType.MODEL", "model")
    assert "CUSTOMER_EMAIL" in entries[0]["error"].upper()
    assert tasks["snapshot_sources"] == "upstream_failed"
    report = airflow_env.task_result(PIPELINE, run_id, "check_source_drift")
    assert report["headline"] == "drift detected (1 change)"  # type: ignore[index]
    (event,) = report["events"]  # type: ignore[index]
    assert (event["kind"], event["column"], event["new_column"]) == (
        "column_renamed",
        "CUSTOMER_EMAIL",
        "EMAIL_ADDRESS",
    )
