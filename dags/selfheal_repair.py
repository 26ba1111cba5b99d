"""The repair DAG for the example pipeline: built by ``build_repair_dag``, configured from the environment.

``shop_pipeline``'s failure callback triggers it (``[selfheal] repair_dag_id``, default ``selfheal_repair``) with
the incident as conf. The same file serves the embedded demo and a real account:

* ``SELFHEAL_DBT_PROJECT_DIR``: the dbt project, a git working tree on the deploy branch (default: the demo
  project in ``dev/``);
* ``SELFHEAL_DBT_MANIFEST``: its manifest (default: ``<project>/target/manifest.json``);
* ``SELFHEAL_WAREHOUSE_CONN_ID``: the Airflow connection (default ``selfheal_warehouse``, type ``snowflake``);
* ``SELFHEAL_PROD_DATABASE`` (default ``DEMO``), ``SELFHEAL_DEPLOY_BRANCH`` (default ``main``),
  ``SELFHEAL_PROMOTE_MODE`` (``merge`` or ``branch_only``), ``SELFHEAL_SLACK_CONN_ID``,
  ``SELFHEAL_PAGERDUTY_CONN_ID``, ``SELFHEAL_APPROVAL_TIMEOUT_MINUTES`` (default 240), ``SELFHEAL_BASELINE_NAME`` (the pipeline's drift
  baseline, accepted anew after a drift-driven fix; default ``shop_raw``), ``SELFHEAL_CLONE_AT_FAILURE`` (pin the
  clone at the failure time; default true);
* ``[api] base_url`` (``AIRFLOW__API__BASE_URL``): the UI address the page's approval link points at.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow_selfheal.config import get_settings
from airflow_selfheal.dags.repair import build_repair_dag
from airflow_selfheal.repair import RepairConfig

PROJECT_DIR = Path(
    os.environ.get(
        "SELFHEAL_DBT_PROJECT_DIR", Path(__file__).resolve().parent.parent / "dev" / "demo_project"
    )
)

dag = build_repair_dag(
    get_settings().repair_dag_id,
    config=RepairConfig(
        project_dir=str(PROJECT_DIR),
        manifest_path=os.environ.get("SELFHEAL_DBT_MANIFEST") or None,
        snowflake_conn_id=os.environ.get("SELFHEAL_WAREHOUSE_CONN_ID", "selfheal_warehouse"),
        prod_database=os.environ.get("SELFHEAL_PROD_DATABASE", "DEMO"),
        deploy_branch=os.environ.get("SELFHEAL_DEPLOY_BRANCH", "main"),
        promote_mode=os.environ.get("SELFHEAL_PROMOTE_MODE", "merge"),
        slack_conn_id=os.environ.get("SELFHEAL_SLACK_CONN_ID") or None,
        pagerduty_conn_id=os.environ.get("SELFHEAL_PAGERDUTY_CONN_ID") or None,
        baseline_name=os.environ.get("SELFHEAL_BASELINE_NAME", "shop_raw") or None,
        clone_at_failure=os.environ.get("SELFHEAL_CLONE_AT_FAILURE", "true").lower() in ("1", "true", "yes"),
        approval_timeout=timedelta(minutes=float(os.environ.get("SELFHEAL_APPROVAL_TIMEOUT_MINUTES", "240"))),
    ),
    tags=["dbt", "selfheal"],
)
