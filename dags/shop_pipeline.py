"""The example production pipeline: the demo shop's dbt project as a cosmos task group on Snowflake.

A failed dbt task becomes an incident (``SelfhealFailureNotifier``) that starts the repair DAG once per
fingerprint. Before dbt runs, ``check_source_drift`` compares the raw source schemas with the accepted baseline and names
any upstream change; after a green build, ``snapshot_sources`` records the schemas (accepting the first one).

Rendering reads a pre-built ``manifest.json`` (``LoadMode.DBT_MANIFEST``), so parsing this file runs no dbt
command; dbt runs in-process (``InvocationMode.DBT_RUNNER``), whose errors name the failing node.

Configuration comes from the environment so that the same file serves the embedded demo and a real account:

* ``SELFHEAL_DBT_PROJECT_DIR``: the dbt project (default: the demo project in ``dev/``);
* ``SELFHEAL_DBT_MANIFEST``: its manifest (default: ``<project>/target/manifest.json``);
* the Airflow connection ``selfheal_warehouse`` (type ``snowflake``).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode

from airflow_selfheal.callbacks.failure import SelfhealFailureNotifier, capture_dbt_artifacts
from airflow_selfheal.operators.drift import SchemaDriftCheckOperator, SchemaSnapshotOperator
from airflow_selfheal.profiles import SelfhealSnowflakeProfileMapping

PROJECT_DIR = Path(
    os.environ.get(
        "SELFHEAL_DBT_PROJECT_DIR", Path(__file__).resolve().parent.parent / "dev" / "demo_project"
    )
)
MANIFEST_PATH = Path(os.environ.get("SELFHEAL_DBT_MANIFEST", PROJECT_DIR / "target" / "manifest.json"))
CONN_ID = os.environ.get("SELFHEAL_WAREHOUSE_CONN_ID", "selfheal_warehouse")

if not MANIFEST_PATH.is_file():
    raise FileNotFoundError(
        f"dbt manifest not found at {MANIFEST_PATH}. Fix: run `dbt parse` in {PROJECT_DIR} "
        "(or `make manifest`), or point SELFHEAL_DBT_MANIFEST at your CI-built manifest."
    )

with DAG(
    dag_id="shop_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["dbt", "selfheal-demo"],
    doc_md=__doc__,
    default_args={"retries": 0, "retry_delay": timedelta(seconds=30)},
) as dag:
    check_source_drift = SchemaDriftCheckOperator(
        task_id="check_source_drift",
        baseline_name="shop_raw",
        snowflake_conn_id=CONN_ID,
        manifest_path=str(MANIFEST_PATH),
        policy="warn",
    )
    shop = DbtTaskGroup(
        group_id="shop",
        project_config=ProjectConfig(
            dbt_project_path=PROJECT_DIR,
            manifest_path=MANIFEST_PATH,
            project_name="selfheal_demo",
        ),
        profile_config=ProfileConfig(
            profile_name="selfheal_demo",
            target_name="prod",
            profile_mapping=SelfhealSnowflakeProfileMapping(conn_id=CONN_ID),
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        # A test that reads two models (relationships) runs after both, not after the first one only.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST, should_detach_multiple_parents_tests=True
        ),
        # capture_dbt_artifacts keeps run_results.json and the compiled SQL of a failed dbt invocation on the
        # shared artifacts root; the failure callback turns them into an incident and starts the repair DAG.
        operator_args={"install_deps": False, "callback": capture_dbt_artifacts},
        default_args={
            "on_failure_callback": SelfhealFailureNotifier(
                manifest_path=str(MANIFEST_PATH),
                drift_baseline="shop_raw",
                drift_task_id="check_source_drift",
            )
        },
    )
    snapshot_sources = SchemaSnapshotOperator(
        task_id="snapshot_sources",
        baseline_name="shop_raw",
        snowflake_conn_id=CONN_ID,
        manifest_path=str(MANIFEST_PATH),
    )
    check_source_drift >> shop >> snapshot_sources
