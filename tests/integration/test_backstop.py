"""The backstop against a real api-server: a failed dbt task with no incident gets one, and one repair run.

The probe DAGs live in a temp bundle put in front of the default one, as in ``test_approval.py``.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.hooks.airflow_api import AirflowApiClient
from airflow_selfheal.operators.backstop import MISSING_CALLBACK_NOTE, backstop, find_orphan_failures
from airflow_selfheal.records.incidents import IncidentStore
from dev.apiserver import running_api_server

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUNDLE = "selfheal-backstop-probe"
PIPELINE_DAG_ID = "selfheal_backstop_pipeline"
REPAIR_DAG_ID = "selfheal_backstop_repair"
PROBE_DAGS = textwrap.dedent(
    """
    from __future__ import annotations

    from pathlib import Path

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from cosmos import ProfileConfig
    from cosmos.operators.local import DbtRunLocalOperator

    HERE = Path(__file__).parent

    with DAG("selfheal_backstop_pipeline", schedule=None, catchup=False):
        # Stands in for a SIGKILLed (out-of-memory) dbt task: it fails and runs no on_failure_callback. Killing
        # a task for real is not possible here, because dag.test() runs it inside the test process itself.
        # A real cosmos operator, so that the task instance's operator is the one the backstop looks for; its
        # project folder does not exist, so it fails at once, without dbt or the network.
        DbtRunLocalOperator(
            task_id="stg_orders_run",
            project_dir=str(HERE / "no_such_dbt_project"),
            profile_config=ProfileConfig(
                profile_name="probe", target_name="dev", profiles_yml_filepath=HERE / "profiles.yml"
            ),
            install_deps=False,
            retries=0,
        )

    with DAG("selfheal_backstop_repair", schedule=None, catchup=False):
        # Stands in for the repair DAG of issue 5.
        EmptyOperator(task_id="triage")
    """
)


@pytest.fixture
def probe(dag_bundles: DagBundles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The probe DAGs in a temp bundle synced to the metadata DB, repair DAG and artifacts root configured."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "probe_backstop.py").write_text(PROBE_DAGS)
    (folder / "profiles.yml").write_text("probe:\n  target: dev\n  outputs: {}\n")
    monkeypatch.setenv("AIRFLOW__SELFHEAL__REPAIR_DAG_ID", REPAIR_DAG_ID)
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    dag_bundles.sync(BUNDLE, folder, with_dags_folder=True)
    return folder


def test_backstop_reports_a_failure_that_ran_no_callback(probe: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    since = datetime.now(timezone.utc) - timedelta(minutes=5)
    run = DagBag(dag_folder=str(probe)).dags[PIPELINE_DAG_ID].test()
    (failed,) = run.get_task_instances()
    assert (str(run.state), str(failed.state)) == ("failed", "failed")
    incidents = IncidentStore()
    assert incidents.list() == []  # no callback ran: nothing recorded the failure

    with running_api_server(probe / "api-server.log") as base_url:
        client = AirflowApiClient(base_url)
        (orphan,) = find_orphan_failures(client, since=since, dag_ids=[PIPELINE_DAG_ID], store=incidents)
        assert (orphan["dag_run_id"], orphan["task_id"], orphan["operator"]) == (
            run.run_id,
            "stg_orders_run",
            "DbtRunLocalOperator",
        )

        first = backstop(client, since=since, dag_ids=[PIPELINE_DAG_ID])
        second = backstop(client, since=since, dag_ids=[PIPELINE_DAG_ID])

    (entry,) = first["incidents"]
    assert entry["errors"] == []
    assert entry["new_incident"] is True
    assert entry["dispatch"]["created"] is True
    (incident,) = incidents.list()
    assert incident.incident_id == entry["incident_id"]
    assert (incident.pipeline, incident.run_id, incident.task_id, incident.try_number) == (
        PIPELINE_DAG_ID,
        run.run_id,
        "stg_orders_run",
        failed.try_number,
    )
    assert incident.missing[0] == MISSING_CALLBACK_NOTE
    # dag.test() leaves the log where the api-server cannot read it: that is noted, never classified as the error.
    assert incident.missing[1].startswith("task log empty (Could not read served logs"), incident.missing
    assert (incident.triage or {})["failure_class"] == entry["failure_class"] == "unknown"
    (occurrence,) = incidents.occurrences(incident.incident_id)
    assert occurrence["source"] == "backstop"
    (repair,) = DagRun.find(dag_id=REPAIR_DAG_ID)
    assert repair.run_id == entry["dispatch"]["run_id"]
    assert (repair.conf or {})["incident_id"] == incident.incident_id

    assert (second["orphans"], second["incidents"]) == (0, [])
    assert len(DagRun.find(dag_id=REPAIR_DAG_ID)) == 1
