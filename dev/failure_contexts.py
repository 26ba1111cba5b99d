"""Hand-built task contexts and dbt artifacts, as Airflow 3 and cosmos hand them to the failure callbacks.

A context is what a callback receives: ``ti`` (the task instance, whose ``xcom_pull`` reads the drift check's
report), ``task`` (the cosmos operator, whose profile names the warehouse connection), ``exception`` and cosmos'
``dbt_node_config``. The task instance is a stand-in because its real ``xcom_pull`` needs a task supervisor;
``tests/integration/test_failure_capture.py`` runs the real one.

The dbt results are those of a real ``dbt run --select stg_orders`` (dbt-core 1.11.16, dbt-snowflake 1.12.3)
against the embedded warehouse after the rename_column scenario; metadata and args trimmed.
``tests/unit/records/test_incidents.py`` imports them from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift import DriftEvent
from airflow_selfheal.notifications.failure_evidence import TaskKey, artifact_prefix

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from dev.s3 import S3Server

DAG_ID = "shop_pipeline"
RUN_ID = "manual__2026-03-01T06:00:00+00:00"
TASK_ID = "shop.stg_orders.run"
STG_ORDERS = "model.selfheal_demo.stg_orders"
SOURCE = "source.selfheal_demo.raw.orders"
CHILD = "model.selfheal_demo.fct_orders"
NOT_NULL = "test.selfheal_demo.not_null_stg_orders_customer_id.af79d5e4b5"
FAILED_AT = datetime(2026, 3, 1, 6, 1, 2, tzinfo=timezone.utc)

STG_ORDERS_ERROR = (
    "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
    '  002043 (02000): Binder Error: Referenced column "CUSTOMER_EMAIL" not found in FROM clause!\n'
    '  Candidate bindings: "CUSTOMER_ID", "ORDER_ID", "ORDER_DATE"\n'
    "  \n"
    "  LINE 1: ... ORDER_ID, CUSTOMER_ID, ORDER_DATE, LOWER(STATUS) AS STATUS, CUSTOMER_EMAIL, _LOADED_AT AS "
    "LOADED_AT FROM DEMO.RAW.ORDERS...\n"
    "                                                                          ^^^^^^^^^^^^^^\n"
    "  compiled code at target/run/selfheal_demo/models/staging/stg_orders.sql"
)
STG_ORDERS_SQL = (
    "select\n    order_id,\n    customer_id,\n    order_date,\n    lower(status) as status,\n"
    "    customer_email,\n    _loaded_at as loaded_at\nfrom DEMO.RAW.orders"
)
REAL_RUN_RESULTS: dict[str, Any] = {
    "metadata": {
        "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
        "dbt_version": "1.11.16",
        "generated_at": "2026-11-23T08:23:17.771050Z",
        "invocation_id": "d7faac78-2677-4218-930b-a6f0a648ccb8",
        "invocation_started_at": "2026-11-23T08:23:10.404355Z",
        "env": {},
    },
    "results": [
        {
            "status": "error",
            "timing": [
                {
                    "name": "compile",
                    "started_at": "2026-11-23T08:23:17.674065Z",
                    "completed_at": "2026-11-23T08:23:17.683820Z",
                },
                {
                    "name": "execute",
                    "started_at": "2026-11-23T08:23:17.684319Z",
                    "completed_at": "2026-11-23T08:23:17.750707Z",
                },
            ],
            "thread_id": "Thread-2 (worker)",
            "execution_time": 0.08420515060424805,
            "adapter_response": {},
            "message": STG_ORDERS_ERROR,
            "failures": None,
            "unique_id": STG_ORDERS,
            "compiled": True,
            "compiled_code": STG_ORDERS_SQL,
            "relation_name": "DEMO.ANALYTICS.stg_orders",
            "batch_results": None,
        }
    ],
    "elapsed_time": 0.35622620582580566,
    "args": {
        "which": "run",
        "select": ["stg_orders"],
        "invocation_command": "dbt run --select stg_orders --project-dir /tmp/fc_probe/proj",
    },
}
# A failed not_null test, in the same dbt 1.11 result format.
FAILED_TEST_RESULT: dict[str, Any] = {
    "status": "fail",
    "timing": [],
    "thread_id": "Thread-3 (worker)",
    "execution_time": 0.05,
    "adapter_response": {},
    "message": "Got 5 results, configured to fail if != 0",
    "failures": 5,
    "unique_id": NOT_NULL,
    "compiled": True,
    "compiled_code": "select customer_id from DEMO.ANALYTICS.stg_orders where customer_id is null",
    "relation_name": None,
    "batch_results": None,
}
RENAME = DriftEvent(
    kind="column_renamed",
    table="RAW.ORDERS",
    column="CUSTOMER_EMAIL",
    new_column="EMAIL_ADDRESS",
    old_type="VARCHAR",
    new_type="VARCHAR",
    confidence=0.9,
    reason="same type VARCHAR; same position 5",
).to_dict()

# What cosmos' DBT_RUNNER invocation raises for the rename (CosmosDbtRunError), message as cosmos builds it.
COSMOS_ERROR = "dbt invocation completed with errors: stg_orders: " + STG_ORDERS_ERROR

MANIFEST: dict[str, Any] = {
    "metadata": {"dbt_version": "1.11.16", "project_name": "selfheal_demo"},
    "nodes": {
        STG_ORDERS: {
            "unique_id": STG_ORDERS,
            "resource_type": "model",
            "name": "stg_orders",
            "package_name": "selfheal_demo",
            "original_file_path": "models/staging/stg_orders.sql",
            "depends_on": {"nodes": [SOURCE], "macros": []},
        },
        CHILD: {
            "unique_id": CHILD,
            "resource_type": "model",
            "name": "fct_orders",
            "original_file_path": "models/marts/fct_orders.sql",
            "depends_on": {"nodes": [STG_ORDERS]},
        },
        NOT_NULL: {
            "unique_id": NOT_NULL,
            "resource_type": "test",
            "name": "not_null_stg_orders_customer_id",
            "original_file_path": "models/staging/_staging.yml",
            "test_metadata": {"name": "not_null", "kwargs": {"column_name": "customer_id"}},
            "depends_on": {"nodes": [STG_ORDERS]},
        },
    },
    "sources": {
        SOURCE: {
            "unique_id": SOURCE,
            "resource_type": "source",
            "name": "orders",
            "source_name": "raw",
            "schema": "RAW",
            "database": "DEMO",
            "identifier": "ORDERS",
        }
    },
    "child_map": {STG_ORDERS: [CHILD, NOT_NULL], SOURCE: [STG_ORDERS]},
}


class CosmosDbtRunError(Exception):
    """Stands for cosmos' exception of the same name, whose text the notifier reads."""


@dataclass
class FakeTaskInstance:
    """The attributes a callback reads from Airflow 3's RuntimeTaskInstance, and its ``xcom_pull``."""

    dag_id: str = DAG_ID
    run_id: str = RUN_ID
    task_id: str = TASK_ID
    map_index: int = -1
    try_number: int = 1
    end_date: datetime | None = FAILED_AT
    xcoms: dict[str, Any] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)

    def xcom_pull(
        self, task_ids: str, dag_id: str | None = None, run_id: str | None = None, **kwargs: Any
    ) -> Any:
        self.pulls.append({"task_ids": task_ids, "dag_id": dag_id, "run_id": run_id})
        return self.xcoms.get(task_ids)


def drift_report(baseline: str = "shop_raw") -> dict[str, Any]:
    """The drift check's XCom in the failed run: the rename of CUSTOMER_EMAIL."""
    return {
        "status": "drift_detected",
        "headline": "drift detected (1 change)",
        "events": [RENAME],
        "baseline_name": baseline,
    }


def node_config(project: Path) -> dict[str, Any]:
    """cosmos' ``DbtNode.context_dict`` for stg_orders."""
    return {
        "unique_id": STG_ORDERS,
        "resource_type": "model",
        "depends_on": [SOURCE],
        "file_path": str(project / "models/staging/stg_orders.sql"),
        "original_file_path": "models/staging/stg_orders.sql",
        "tags": [],
        "config": {"materialized": "view"},
        "has_test": True,
        "resource_name": "stg_orders",
        "name": "stg_orders",
    }


def context(
    project: Path, *, ti: FakeTaskInstance | None = None, conn_id: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """The context of stg_orders' failed run task; ``overrides`` replace or add keys."""
    ti = ti or FakeTaskInstance(xcoms={"check_source_drift": drift_report()})
    profile_mapping = SimpleNamespace(conn_id=conn_id) if conn_id else None
    values: dict[str, Any] = {
        "ti": ti,
        "task_instance": ti,
        "run_id": ti.run_id,
        "dag": SimpleNamespace(dag_id=ti.dag_id),
        "task": SimpleNamespace(
            task_id=ti.task_id, profile_config=SimpleNamespace(profile_mapping=profile_mapping)
        ),
        "exception": CosmosDbtRunError(COSMOS_ERROR),
        "dbt_node_config": node_config(project),
    }
    values.update(overrides)
    return values


def use_artifacts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """Point ``[selfheal] artifacts_root`` at ``tmp_path/artifacts`` and return its store."""
    from airflow_selfheal.hooks.artifacts import ArtifactStore

    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    return ArtifactStore()


def use_s3_artifacts_root(
    s3: S3Server, monkeypatch: pytest.MonkeyPatch, conn_id: str = "selfheal_artifacts_s3"
) -> ArtifactStore:
    """Point ``[selfheal] artifacts_root`` at a fresh prefix of the loopback bucket, through ``conn_id``."""
    from airflow_selfheal.hooks.artifacts import ArtifactStore

    for name, value in s3.environ(conn_id).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", s3.root_url())
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_CONN_ID", conn_id)
    return ArtifactStore()


def write_project(root: Path, run_results: dict[str, Any] | str | None = REAL_RUN_RESULTS) -> Path:
    """A dbt project dir as cosmos leaves it after a failed ``dbt run``: target/ with its artifacts."""
    target = root / "target"
    compiled = target / "compiled" / "selfheal_demo" / "models" / "staging"
    compiled.mkdir(parents=True)
    (compiled / "stg_orders.sql").write_text(STG_ORDERS_SQL)
    (compiled / "stg_customers.sql").write_text("select 1")
    (target / "manifest.json").write_text(json.dumps(MANIFEST))
    if run_results is not None:
        text = run_results if isinstance(run_results, str) else json.dumps(run_results)
        (target / "run_results.json").write_text(text)
    return root


def prefix(ti: FakeTaskInstance | None = None) -> str:
    """Where the capture callback keeps the artifacts of ``ti``'s try."""
    ti = ti or FakeTaskInstance()
    return artifact_prefix(TaskKey(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number))
