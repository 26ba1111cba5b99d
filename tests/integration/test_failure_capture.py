"""Issue 4's acceptance: a cosmos pipeline fails after an upstream rename, and exactly one repair run starts.

The pipeline is a copy of ``dags/dbt_pipeline.py`` (which wires the failure capture in) under its own DAG id, in a temp DAG bundle next
to a stub repair DAG; like ``test_dispatch.py``, that bundle is put in front of the default one for this test
only, so ``dag.test()`` writes the sibling repair DAG to the metadata DB and the callback can trigger it. The
repair DAG id and the artifacts root come from ``[selfheal]`` settings pointed at test-only values.

Runs: the baseline is accepted with the CLI (``drift snapshot --accept``, seconds) instead of a clean pipeline
run; then the pipeline runs twice with the rename applied: the failure, and its replay.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.incident import Incident
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.notifications.failure_evidence import TaskKey, artifact_prefix
from airflow_selfheal.records.incidents import IncidentStore
from dev import airflow_env

if TYPE_CHECKING:
    from pathlib import Path

    from dev.warehouse import Warehouse
    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIPELINE = "shop_pipeline_failure_capture"
REPAIR_DAG_ID = "selfheal_repair_failure_capture_stub"
BUNDLE = "selfheal-failure-capture"
FAILED_TASK = "shop.stg_orders.run"
STG_ORDERS = "model.selfheal_demo.stg_orders"

STUB_REPAIR_DAG = textwrap.dedent(
    f'''
    """Stands in for the repair DAG that issue 5 builds: the failure callback only needs a DAG to trigger."""

    from __future__ import annotations

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("{REPAIR_DAG_ID}", schedule=None, catchup=False):
        EmptyOperator(task_id="triage")
    '''
)


def pipeline_source() -> str:
    """``dags/dbt_pipeline.py`` as shipped: it wires the artifact capture and the failure callback itself."""
    source = (airflow_env.DAGS_FOLDER / "dbt_pipeline.py").read_text()
    assert "on_failure_callback" in source
    assert '"callback": capture_dbt_artifacts' in source
    return source


@pytest.fixture
def bundle(dag_bundles: DagBundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp DAG bundle, first in the bundle list, and test-only ``[selfheal]`` settings."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "shop_pipeline_failure_capture.py").write_text(pipeline_source())
    (folder / "selfheal_repair_stub.py").write_text(STUB_REPAIR_DAG)
    dag_bundles.configure(BUNDLE, folder, with_dags_folder=True)
    monkeypatch.setenv("AIRFLOW__SELFHEAL__REPAIR_DAG_ID", REPAIR_DAG_ID)
    monkeypatch.setenv("SELFHEAL_PIPELINE_DAG_ID", PIPELINE)  # the copy's own DAG id, from the settings
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ENVIRONMENT", "ci")
    return folder


@pytest.fixture
def loaded(warehouse: Warehouse, demo_manifest: Path, airflow_db: Path) -> Warehouse:
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    return warehouse


def run_pipeline(dag: Any) -> tuple[str, str, list[str]]:
    run = dag.test()
    failed = sorted(ti.task_id for ti in run.get_task_instances() if str(ti.state) == "failed")
    return str(run.state), run.run_id, failed


def repair_runs() -> list[Any]:
    from airflow.models import DagRun

    return list(DagRun.find(dag_id=REPAIR_DAG_ID))


def is_project_commit(sha: str | None) -> bool:
    """Whether ``sha`` is the demo project's HEAD or an ancestor of it (the repo may move on during the test)."""
    git = ["git", "-C", str(airflow_env.DEMO_PROJECT)]
    if subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, check=False).returncode != 0:
        return sha is None  # not a git work tree: no commit to record
    if sha is None or not re.fullmatch(r"[0-9a-f]{40}", sha):
        return False
    return subprocess.run([*git, "merge-base", "--is-ancestor", sha, "HEAD"], check=False).returncode == 0


def test_upstream_rename_starts_one_repair_run_with_the_incident(
    loaded: Warehouse, bundle: Path, demo_manifest: Path
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from airflow_selfheal.cli import main
    from dev.scenarios import SCENARIOS

    bag = DagBag(dag_folder=str(bundle))
    assert bag.import_errors == {}
    dag = bag.dags[PIPELINE]
    assert dag.get_task(FAILED_TASK).on_failure_callback, "the group's default_args did not reach its tasks"
    assert repair_runs() == []
    snapshot = ["drift", "snapshot", "shop_raw", "--conn-id", airflow_env.WAREHOUSE_CONN_ID]
    assert main([*snapshot, "--manifest", str(demo_manifest), "--accept"]) == 0

    scenario = SCENARIOS["rename_column"]
    with loaded.connect() as conn:
        scenario.apply(conn)
    try:
        first = run_pipeline(dag)
        runs_after_first = [(run.run_id, run.conf) for run in repair_runs()]
        replay = run_pipeline(dag)
    finally:
        with loaded.connect() as conn:
            scenario.reset(conn)

    assert (first[0], first[2]) == ("failed", [FAILED_TASK])
    assert (replay[0], replay[2]) == ("failed", [FAILED_TASK])
    assert first[1] != replay[1]

    # Exactly one repair run, created by the first failure, carrying its incident; the replay added none.
    ((run_id, conf),) = runs_after_first
    assert [(run.run_id, run.conf) for run in repair_runs()] == [(run_id, conf)]
    incident = Incident.from_dict(conf["incident"])
    assert run_id == f"selfheal__{incident.fingerprint[:16]}"
    assert (conf["incident_id"], conf["fingerprint"]) == (incident.incident_id, incident.fingerprint)

    # The incident names the model, the class and the rename as root cause.
    (node,) = incident.nodes
    assert (node.unique_id, node.resource_type, node.original_file_path) == (
        STG_ORDERS,
        "model",
        "models/staging/stg_orders.sql",
    )
    assert "source.selfheal_demo.raw.orders" in node.upstream
    assert node.downstream  # from the manifest's child map
    triage = incident.triage or {}
    assert (triage["failure_class"], triage["action"]) == ("missing_column", "repair")
    root_cause = triage["root_cause"]
    assert root_cause["kind"] == "upstream_rename"
    evidence = root_cause["evidence"]
    assert (evidence["table"], evidence["column"], evidence["new_column"]) == (
        "RAW.ORDERS",
        "CUSTOMER_EMAIL",
        "EMAIL_ADDRESS",
    )

    # Everything was collected in the real callback: artifacts from cosmos, the drift report through xcom_pull.
    assert incident.missing == ()
    assert (incident.pipeline, incident.run_id, incident.task_id, incident.try_number) == (
        PIPELINE,
        first[1],
        FAILED_TASK,
        1,
    )
    assert incident.compiled_sql is not None
    assert "customer_email" in incident.compiled_sql.lower()
    assert [(r["unique_id"], r["status"]) for r in incident.run_results_excerpt] == [(STG_ORDERS, "error")]
    assert "CUSTOMER_EMAIL" in incident.error
    assert incident.environment == "ci"
    assert is_project_commit(incident.git_sha), incident.git_sha

    # Both failures are occurrences of the one stored incident, and each try's artifacts were captured.
    incidents = IncidentStore()
    assert incidents.get(incident.incident_id) == incident
    assert [o["run_id"] for o in incidents.occurrences(incident.incident_id)] == [first[1], replay[1]]
    store = ArtifactStore()
    for pipeline_run in (first[1], replay[1]):
        prefix = artifact_prefix(TaskKey(PIPELINE, pipeline_run, FAILED_TASK, -1, 1))
        assert store.exists(f"{prefix}/run_results.json")
        assert store.exists(f"{prefix}/compiled/{STG_ORDERS}.sql")
