"""The example production pipeline: one dbt project as a cosmos task group on Snowflake, with self-healing wired in.

Nothing here names a project: the dbt project comes from ``SELFHEAL_DBT_PROJECT_DIR`` and its ``dbt_project.yml``
(see ``airflow_selfheal.dags.project`` for every setting and its default). The demo runs it on the shop project in
``dev/``; the tests also run it on a second project of another shape.

* ``check_source_drift`` compares the raw source schemas with the accepted baseline before dbt runs and names any
  upstream change. If it fails itself (the warehouse is down), its callback still opens an incident, which the
  repair DAG retries once the warehouse answers.
* Every dbt task (models, tests, snapshots, seeds and source freshness) turns a failure into an incident
  (``SelfhealFailureNotifier``) that starts the repair DAG once per fingerprint.
* ``snapshot_sources`` records the source schemas after a green build (accepting the first one).

Rendering reads a pre-built ``manifest.json`` (``LoadMode.DBT_MANIFEST``), so parsing this file runs no dbt
command; dbt runs in-process (``InvocationMode.DBT_RUNNER``), whose errors name the failing node.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior

from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
from airflow_selfheal.dags.project import DbtProjectSettings
from airflow_selfheal.hooks.profiles import SelfhealSnowflakeProfileMapping
from airflow_selfheal.notifications.failure import SelfhealFailureNotifier
from airflow_selfheal.operators.drift import SchemaDriftCheckOperator, SchemaSnapshotOperator

settings = DbtProjectSettings.from_environment()
MANIFEST = str(settings.require_manifest())
# ``with_tests_or_freshness`` (the default) renders a freshness task per source that declares freshness, so a stale
# source is named as such instead of surfacing later as a model's wrong result.
SOURCE_RENDERING = SourceRenderingBehavior(settings.source_rendering)

# One notifier serves every task: dbt tasks carry their node, other tasks (the drift check) are named by task id.
on_failure = SelfhealFailureNotifier(
    manifest_path=MANIFEST,
    project_dir=str(settings.project_dir),
    drift_baseline=settings.baseline_name,
    drift_task_id="check_source_drift",
)

with DAG(
    dag_id=settings.pipeline_dag_id,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["dbt", "selfheal"],
    doc_md=__doc__,
    default_args={"retries": 0, "retry_delay": timedelta(seconds=30)},
) as dag:
    check_source_drift = SchemaDriftCheckOperator(
        task_id="check_source_drift",
        baseline_name=settings.baseline_name,
        snowflake_conn_id=settings.warehouse_conn_id,
        manifest_path=MANIFEST,
        policy="warn",
        on_failure_callback=on_failure,
    )
    dbt = DbtTaskGroup(
        group_id=settings.group_id,
        project_config=ProjectConfig(
            dbt_project_path=settings.project_dir,
            manifest_path=MANIFEST,
            project_name=settings.project_name,
        ),
        profile_config=ProfileConfig(
            profile_name=settings.profile_name,
            target_name=settings.target_name,
            profile_mapping=SelfhealSnowflakeProfileMapping(conn_id=settings.warehouse_conn_id),
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
        ),
        # A test that reads two models (relationships) runs after both, not after the first one only.
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            should_detach_multiple_parents_tests=True,
            source_rendering_behavior=SOURCE_RENDERING,
        ),
        # capture_dbt_artifacts keeps run_results.json, sources.json and the compiled SQL of a failed dbt
        # invocation on the shared artifacts root; the failure callback turns them into an incident.
        operator_args={"install_deps": False, "callback": capture_dbt_artifacts},
        default_args={"on_failure_callback": on_failure},
    )
    snapshot_sources = SchemaSnapshotOperator(
        task_id="snapshot_sources",
        baseline_name=settings.baseline_name,
        snowflake_conn_id=settings.warehouse_conn_id,
        manifest_path=MANIFEST,
    )
    check_source_drift >> dbt >> snapshot_sources
