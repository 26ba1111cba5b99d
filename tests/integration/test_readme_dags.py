"""The README's "Using it in a DAG" blocks are complete: pasted into a DAG folder, they import and wire every part.

Only the settings a DAG author owns are replaced (the project, its name, the connection, the baseline). The
second project's end-to-end tests (``test_rides_e2e_*.py``) run the same blocks through failures and repairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dev import airflow_env
from dev.e2e import readme_block

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration]


def test_readme_blocks_import_as_a_pipeline_and_a_repair_dag(
    demo_manifest: Path, dag_bundles: DagBundles, tmp_path: Path
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    project = airflow_env.DEMO_PROJECT
    (folder / "pipeline.py").write_text(
        readme_block(
            "pipeline-dag",
            {
                'Path("/opt/dbt/rides")': f"Path({str(project)!r})",
                'PROJECT_NAME = "rides"': 'PROJECT_NAME = "selfheal_demo"',
                'CONN_ID = "snowflake_default"': f"CONN_ID = {airflow_env.WAREHOUSE_CONN_ID!r}",
            },
        )
    )
    (folder / "repair.py").write_text(
        readme_block("repair-dag", {'project_dir="/opt/dbt/rides"': f"project_dir={str(project)!r}"})
    )
    bag = dag_bundles.sync("readme", folder)
    pipeline, repair = bag.dags["rides_pipeline"], bag.dags["selfheal_repair"]
    check = pipeline.get_task("check_source_drift")
    assert check.on_failure_callback, "the drift check must open an incident when it fails"
    dbt_tasks = [task for task in pipeline.tasks if task.task_id.startswith("selfheal_demo.")]
    assert dbt_tasks
    for task in dbt_tasks:
        assert task.on_failure_callback, task.task_id
        assert task.callback is not None, task.task_id  # capture_dbt_artifacts
    # Freshness is rendered: the demo's ORDERS source declares it.
    assert "selfheal_demo.raw_orders.source" in pipeline.task_ids, sorted(pipeline.task_ids)
    assert pipeline.get_task("snapshot_sources").upstream_task_ids
    assert repair.get_task("cleanup").is_teardown
    assert "approve" in repair.task_ids
