"""A warehouse outage before dbt runs: the drift check fails, an incident opens, and the retry rebuilds prod.

The pipeline is ``dags/dbt_pipeline.py`` as shipped, configured through the ``SELFHEAL_*`` variables for the demo
shop project, and the repair DAG is built with ``build_repair_dag``, both in one temp DAG bundle. The pipeline's
warehouse connection points at a closed port on 127.0.0.1, so the real ``SchemaDriftCheckOperator`` fails with the
Snowflake connector's own error, every dbt task ends ``upstream_failed``, and the drift check's real failure
callback opens the incident and requests one repair run. The repair run is then run twice with ``dag.test()``:

1. the warehouse still down: the retry waits for its (small) bound, fails saying how long it waited, and the
   failure is paged to the local PagerDuty receiver;
2. the connection restored: the retry's wait returns at once, ``dbt build`` of the blocked nodes runs in prod,
   the dropped mart exists again and the audit outcome is ``retried``.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from dev import airflow_env
from dev.receivers import http_receiver
from dev.warehouse import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dev.receivers import Receiver
    from dev.warehouse import Warehouse
    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIPELINE = "shop_outage_pipeline"
REPAIR_DAG_ID = "selfheal_repair_outage"
BUNDLE = "selfheal-warehouse-outage"
CONN_ID = "outage_warehouse"
DRIFT_TASK = "check_source_drift"
WAIT_SECONDS = 3
MART = "DIM_CUSTOMERS"  # a table-materialised mart of the demo project

REPAIR_DAG = textwrap.dedent(
    f"""
    from datetime import timedelta
    import os

    from airflow_selfheal.dags.repair import build_repair_dag
    from airflow_selfheal.repair import RepairConfig

    dag = build_repair_dag(
        {REPAIR_DAG_ID!r},
        config=RepairConfig(
            project_dir=os.environ["SELFHEAL_DBT_PROJECT_DIR"],
            manifest_path=os.environ["SELFHEAL_DBT_MANIFEST"],
            snowflake_conn_id={CONN_ID!r},
            prod_database="DEMO",
            pagerduty_conn_id="pd_outage",
            sandbox_root=os.environ["OUTAGE_SANDBOXES"],
            warehouse_wait=timedelta(seconds={WAIT_SECONDS}),
        ),
    )
    """
)


def conn_json(warehouse: Warehouse, port: int | None = None) -> str:
    data = json.loads(warehouse.airflow_conn_uri())
    if port is not None:
        data["extra"]["port"] = port
    return json.dumps(data)


@pytest.fixture(scope="module")
def stack(
    warehouse: Warehouse,
    module_dag_bundles: DagBundles,
    demo_manifest: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Both DAGs synced from one bundle, a PagerDuty receiver, and the pipeline's connection at a closed port."""
    from airflow.models.connection import Connection

    root = tmp_path_factory.mktemp("warehouse-outage")
    folder = root / "dags"
    folder.mkdir()
    shutil.copy(airflow_env.DAGS_FOLDER / "dbt_pipeline.py", folder / "pipeline.py")
    (folder / "repair.py").write_text(REPAIR_DAG)
    patch = pytest.MonkeyPatch()
    with http_receiver() as receiver:
        pagerduty = Connection(
            conn_id="pd_outage", conn_type="pagerduty_events", host=receiver.url, password="k" * 32
        )
        environ = {
            "SELFHEAL_DBT_PROJECT_DIR": str(airflow_env.DEMO_PROJECT),
            "SELFHEAL_DBT_MANIFEST": str(demo_manifest),
            "SELFHEAL_WAREHOUSE_CONN_ID": CONN_ID,
            "SELFHEAL_PIPELINE_DAG_ID": PIPELINE,
            "OUTAGE_SANDBOXES": str(root / "sandboxes"),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(warehouse, port=free_port()),
            "AIRFLOW_CONN_PD_OUTAGE": pagerduty.as_json(),
            "AIRFLOW__SELFHEAL__REPAIR_DAG_ID": REPAIR_DAG_ID,
            "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": str(root / "artifacts"),
            "AIRFLOW__SELFHEAL__ENVIRONMENT": "ci",
        }
        for key, value in environ.items():
            patch.setenv(key, value)
        try:
            bag = module_dag_bundles.sync(BUNDLE, folder)
            yield {"bag": bag, "receiver": receiver, "warehouse": warehouse}
        finally:
            patch.undo()


def repair_confs() -> list[dict[str, Any]]:
    from airflow.models import DagRun

    return [dict(run.conf) for run in DagRun.find(dag_id=REPAIR_DAG_ID)]


def run_repair(stack: dict[str, Any], conf: dict[str, Any]) -> dict[str, str]:
    run = stack["bag"].dags[REPAIR_DAG_ID].test(run_conf=conf)
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def mart_exists(warehouse: Warehouse) -> bool:
    with warehouse.connect() as conn:
        rows = (
            conn.cursor()
            .execute(
                "select count(*) from DEMO.INFORMATION_SCHEMA.TABLES "
                f"where TABLE_SCHEMA = 'ANALYTICS' and TABLE_NAME = '{MART}'"  # noqa: S608 - a constant
            )
            .fetchone()
        )
    return bool(rows[0])


def pages(receiver: Receiver) -> list[dict[str, Any]]:
    return [d.json() for d in receiver.deliveries if d.path.startswith("/v2/enqueue")]


def test_outage_before_dbt_opens_one_incident_and_the_retry_rebuilds_prod(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_selfheal.core.incident import Incident
    from airflow_selfheal.records.audit import AuditLog
    from airflow_selfheal.records.incidents import IncidentStore
    from dev.loader import load_raw

    warehouse = stack["warehouse"]
    with warehouse.connect() as conn:
        load_raw(conn)
        conn.cursor().execute(f"drop table if exists DEMO.ANALYTICS.{MART}")
    assert not mart_exists(warehouse)
    assert repair_confs() == []

    dag = stack["bag"].dags[PIPELINE]
    dbt_tasks = {
        task.task_id for task in dag.tasks if "dbt_node_config" in getattr(task, "extra_context", {})
    }
    assert dbt_tasks
    pipeline = dag.test()
    instances = {ti.task_id: ti for ti in pipeline.get_task_instances()}
    assert str(pipeline.state) == "failed"
    assert str(instances[DRIFT_TASK].state) == "failed"
    # No dbt task ran, so no dbt callback either: only the drift check's callback can open the incident.
    assert {str(instances[task_id].state) for task_id in dbt_tasks} == {"upstream_failed"}

    (conf,) = repair_confs()
    incident = Incident.from_dict(conf["incident"])
    assert (incident.pipeline, incident.task_id, incident.nodes) == (PIPELINE, DRIFT_TASK, ())
    # The connector's own words for a closed port, as the real operator raised them.
    assert "250001" in incident.error
    assert "Could not connect to Snowflake backend" in incident.error
    assert (incident.triage or {})["failure_class"] == "transient"
    blocked = {node.unique_id for node in incident.blocked_nodes}
    assert {"model.selfheal_demo.stg_orders", "model.selfheal_demo.dim_customers"} <= blocked
    assert IncidentStore().get(incident.incident_id) == incident

    # 1. Still down: the retry waits its bound, then fails, and the failure pages a person.
    started = len(stack["receiver"].deliveries)
    states = run_repair(stack, conf)
    assert states["retry"] == "failed", states
    assert states["escalate_failure"] == "success", states
    assert states["clone"] == "skipped", states
    (event,) = pages(stack["receiver"])[started:]
    reason = event["payload"]["custom_details"]["reason"]
    assert "the repair run failed at retry" in reason
    assert f"did not answer `select 1` within 0:00:0{WAIT_SECONDS}" in reason
    assert "waited " in reason
    assert AuditLog(incident.incident_id).summary()["outcome"] == "retry_failed"
    assert not mart_exists(warehouse)  # nothing ran

    # 2. The warehouse answers again: the blocked nodes are rebuilt in prod, with no code change.
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(warehouse))
    states = run_repair(stack, conf)
    assert states["retry"] == "success", states
    assert states["clone"] == states["escalate"] == "skipped", states
    summary = AuditLog(incident.incident_id).summary()
    assert summary["outcome"] == "retried"
    steps = {step["step"]: step["status"] for step in summary["steps"]}
    assert steps["wait_for_warehouse"] == "answered"
    assert steps["retry"] == "succeeded"
    assert mart_exists(warehouse)
