"""Fixtures the integration modules share: temp DAG bundles, and the second project's end-to-end stack.

``dag_bundles`` and ``module_dag_bundles`` (:class:`tests.support.bundles.DagBundles`) put a temp DAG folder into
``[dag_processor] dag_bundle_config_list`` and sync it into the metadata DB, for one test or for one module.

``e2e_stack`` is what the end-to-end scenarios of ``tests/support/rides_e2e.py`` run on. It is module-scoped, so
each ``test_rides_e2e_*.py`` module sets up its own and the two can run on different workers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.support.bundles import DagBundles

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dev.warehouse import Warehouse


@pytest.fixture
def dag_bundles(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> DagBundles:
    """Temp DAG bundles for one test: configured until the test ends."""
    return DagBundles(monkeypatch)


@pytest.fixture(scope="module")
def module_dag_bundles(airflow_db: Path) -> Iterator[DagBundles]:
    """Temp DAG bundles for a module's fixtures: configured until the module's last test ends."""
    patch = pytest.MonkeyPatch()
    try:
        yield DagBundles(patch)
    finally:
        patch.undo()


@pytest.fixture(scope="module")
def e2e_stack(
    warehouse: Warehouse, module_dag_bundles: DagBundles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The project in git, both README DAGs in a synced bundle, on-call receivers and an api-server.

    ``report`` collects the module's scenario entries; they go to ``SELFHEAL_E2E_REPORT`` when the module ends.
    """
    from airflow.models.connection import Connection

    from dev import airflow_env
    from dev.apiserver import running_api_server
    from dev.e2e import readme_block
    from dev.project_repo import git, git_copy
    from dev.receivers import http_receiver
    from tests.support.rides_e2e import (
        BUNDLE,
        CONN_ID,
        PIPELINE,
        PROJECT,
        REPAIR_DAG_ID,
        conn_json,
        write_report,
    )

    root = tmp_path_factory.mktemp(f"{PROJECT.key}-e2e")
    project, origin = git_copy(root, PROJECT.project_dir, folder=PROJECT.git_dir_name)
    folder = root / "dags"
    folder.mkdir()
    (folder / "pipeline.py").write_text(
        readme_block(
            "pipeline-dag",
            {
                'Path("/opt/dbt/rides")': f"Path({str(project)!r})",
                'PROJECT_NAME = "rides"': f"PROJECT_NAME = {PROJECT.dbt_project_name!r}",
                'dag_id="rides_pipeline"': f"dag_id={PIPELINE!r}",
                'CONN_ID = "snowflake_default"': f"CONN_ID = {CONN_ID!r}",
                'BASELINE = "rides_sources"': f"BASELINE = {PROJECT.baseline_name!r}",
            },
        )
    )
    (folder / "repair.py").write_text(
        readme_block(
            "repair-dag",
            {
                '"selfheal_repair",': f"{REPAIR_DAG_ID!r},",
                'project_dir="/opt/dbt/rides"': f"project_dir={str(project)!r}",
                'snowflake_conn_id="snowflake_default"': f"snowflake_conn_id={CONN_ID!r}",
                'prod_database="RIDES"': f"prod_database={PROJECT.database!r}",
                "slack_conn_id=None": 'slack_conn_id="slack_oncall"',
                "pagerduty_conn_id=None": 'pagerduty_conn_id="pd_oncall"',
                'baseline_name="rides_sources"': f"baseline_name={PROJECT.baseline_name!r}",
            },
        )
    )
    report: list[dict[str, Any]] = []
    patch = pytest.MonkeyPatch()
    with http_receiver() as receiver:
        slack = Connection(
            conn_id="slack_oncall", conn_type="slackwebhook", password=f"{receiver.url}/services/T/B/C"
        )
        pagerduty = Connection(
            conn_id="pd_oncall", conn_type="pagerduty_events", host=receiver.url, password="k" * 32
        )
        environ = {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(warehouse),
            "AIRFLOW_CONN_SLACK_ONCALL": slack.as_json(),
            "AIRFLOW_CONN_PD_ONCALL": pagerduty.as_json(),
            "AIRFLOW__SELFHEAL__REPAIR_DAG_ID": REPAIR_DAG_ID,
            "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": str(root / "artifacts"),
            "AIRFLOW__SELFHEAL__ENVIRONMENT": "ci",
        }
        for key, value in environ.items():
            patch.setenv(key, value)
        patch.chdir(root)
        try:
            airflow_env.dbt_parse(project)
            bag = module_dag_bundles.sync(BUNDLE, folder)
            with running_api_server(root / "api-server.log") as base_url:
                patch.setenv("AIRFLOW__API__BASE_URL", base_url)
                yield {
                    "root": root,
                    "project": project,
                    "origin": origin,
                    "initial": git(origin, "rev-parse", "main"),
                    "bag": bag,
                    "base_url": base_url,
                    "warehouse": warehouse,
                    "receiver": receiver,
                    "report": report,
                }
        finally:
            patch.undo()
            write_report(report)
