"""The ready-made repair DAG, built by ``build_repair_dag`` and configured from the environment.

The pipeline's failure callback triggers it (``[selfheal] repair_dag_id``, default ``selfheal_repair``) with the
incident as conf. Nothing here names a project; the same variables as ``dags/dbt_pipeline.py`` say which one
(``airflow_selfheal.dags.project``), plus:

* ``SELFHEAL_PROD_DATABASE``: the production database, cloned per incident and never written before approval
  (required);
* ``SELFHEAL_DEPLOY_BRANCH`` (default ``main``), ``SELFHEAL_PROMOTE_MODE`` (``merge`` or ``branch_only``),
  ``SELFHEAL_SLACK_CONN_ID``, ``SELFHEAL_PAGERDUTY_CONN_ID``, ``SELFHEAL_APPROVAL_TIMEOUT_MINUTES`` (default 240),
  ``SELFHEAL_CLONE_AT_FAILURE`` (pin the clone at the failure time; default true),
  ``SELFHEAL_WAREHOUSE_WAIT_MINUTES`` (how long a retry waits for the warehouse to answer; default 10);
* ``[api] base_url`` (``AIRFLOW__API__BASE_URL``): the UI address the page's approval link points at.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow_selfheal.config import get_settings
from airflow_selfheal.dags.project import DbtProjectSettings
from airflow_selfheal.dags.repair import build_repair_dag
from airflow_selfheal.repair import RepairConfig

project = DbtProjectSettings.from_environment()

dag = build_repair_dag(
    get_settings().repair_dag_id,
    config=RepairConfig(
        project_dir=str(project.project_dir),
        manifest_path=str(project.manifest_path),
        snowflake_conn_id=project.warehouse_conn_id,
        prod_database=project.require_prod_database(),
        deploy_branch=os.environ.get("SELFHEAL_DEPLOY_BRANCH", "main"),
        promote_mode=os.environ.get("SELFHEAL_PROMOTE_MODE", "merge"),
        slack_conn_id=os.environ.get("SELFHEAL_SLACK_CONN_ID") or None,
        pagerduty_conn_id=os.environ.get("SELFHEAL_PAGERDUTY_CONN_ID") or None,
        baseline_name=project.baseline_name,
        clone_at_failure=os.environ.get("SELFHEAL_CLONE_AT_FAILURE", "true").lower() in ("1", "true", "yes"),
        approval_timeout=timedelta(minutes=float(os.environ.get("SELFHEAL_APPROVAL_TIMEOUT_MINUTES", "240"))),
        warehouse_wait=timedelta(minutes=float(os.environ.get("SELFHEAL_WAREHOUSE_WAIT_MINUTES", "10"))),
    ),
    tags=["dbt", "selfheal"],
)
