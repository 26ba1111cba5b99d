"""The repair DAG is started once per fingerprint from a real ``on_failure_callback`` under ``dag.test()``.

The probe DAGs live in a temp folder, not the repo's ``dags/``. ``dag.test()`` writes DAGs to the metadata DB
by walking the configured DAG bundles, so for this test only a bundle pointing at the temp folder is put in
front of the default one (``[dag_processor] dag_bundle_config_list`` is read afresh on each call). That sync
also writes the sibling repair DAG, which the Execution API needs in order to trigger it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks.airflow_api import DispatchError, RestDispatcher
from dev.warehouse import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FINGERPRINT = "ab" * 32
PIPELINE_DAG_ID = "selfheal_probe_pipeline"
REPAIR_DAG_ID = "selfheal_probe_repair"
PROBE_BUNDLE = "selfheal-dispatch-probe"

PROBE_DAGS = textwrap.dedent(
    """
    from __future__ import annotations

    import json
    from pathlib import Path

    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from airflow_selfheal.hooks.airflow_api import dispatch_from_task

    RESULTS = Path(__file__).with_name("dispatch_results.jsonl")


    def fail():
        raise ValueError("boom")


    def start_repair(context):
        conf = {"pipeline_run_id": context["run_id"], "error": str(context["exception"]), "node": "model.x"}
        try:
            record = {"result": dispatch_from_task(
                dag_id="selfheal_probe_repair", fingerprint="ab" * 32, conf=conf
            ).to_dict()}
        except Exception as exc:  # callbacks never raise; the test reads what happened
            record = {"error": f"{type(exc).__name__}: {exc}"}
        record["conf"] = conf
        with RESULTS.open("a") as out:
            out.write(json.dumps(record) + "\\n")


    with DAG("selfheal_probe_pipeline", schedule=None, catchup=False):
        PythonOperator(task_id="dbt_run", python_callable=fail, retries=0, on_failure_callback=start_repair)

    with DAG("selfheal_probe_repair", schedule=None, catchup=False):
        EmptyOperator(task_id="triage")
    """
)


@pytest.fixture
def probe_dags(dag_bundles: DagBundles, tmp_path: Path) -> Path:
    """A temp DAG folder with the probe DAGs, registered as the first DAG bundle for this test only."""
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "selfheal_dispatch_probe.py").write_text(PROBE_DAGS)
    # The default bundle stays configured, so this test does not deactivate it for later tests.
    return dag_bundles.configure(PROBE_BUNDLE, folder, with_dags_folder=True)


def _repair_runs() -> list[Any]:
    from airflow.models import DagRun

    return DagRun.find(dag_id=REPAIR_DAG_ID)


def test_callback_starts_repair_dag_once_per_fingerprint(airflow_db: Path, probe_dags: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils.state import DagRunState

    bag = DagBag(dag_folder=str(probe_dags))
    assert bag.import_errors == {}
    pipeline = bag.dags[PIPELINE_DAG_ID]
    expected_run_id = "selfheal__" + "ab" * 8
    before = {run.run_id for run in _repair_runs()}
    assert expected_run_id not in before

    states = [pipeline.test(logical_date=None).state for _ in range(3)]

    assert states == [DagRunState.FAILED] * 3
    records = [json.loads(line) for line in (probe_dags / "dispatch_results.jsonl").read_text().splitlines()]
    assert [record.get("error") for record in records] == [None] * 3, records
    assert [record["result"]["created"] for record in records] == [True, False, False]
    assert {(r["result"]["run_id"], r["result"]["via"]) for r in records} == {(expected_run_id, "supervisor")}

    runs = [run for run in _repair_runs() if run.run_id not in before]
    assert [run.run_id for run in runs] == [expected_run_id]
    # First writer wins: the stored conf is the first failure's, not a later one's.
    assert runs[0].conf == records[0]["conf"]
    assert runs[0].conf["pipeline_run_id"] != records[1]["conf"]["pipeline_run_id"]
    assert runs[0].state == DagRunState.QUEUED


@pytest.fixture
def api_server(dag_bundles: DagBundles, probe_dags: Path, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A real ``airflow api-server`` on 127.0.0.1 sharing the test DB, with one simple-auth-manager admin.

    The probe DAGs are written to the DB first, the way the DAG processor would.
    :return: the base URL and the admin's password.
    """
    dag_bundles.sync(PROBE_BUNDLE, probe_dags, with_dags_folder=True)

    password = secrets.token_urlsafe(12)
    passwords_file = tmp_path / "passwords.json"
    passwords_file.write_text(json.dumps({"selfheal": password}))
    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "selfheal:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
    }
    log_path = tmp_path / "api-server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", "1", "--apps", "core"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, server, log_path)
        yield base_url, password
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"api-server exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"api-server not healthy after 90s:\n{log_path.read_text()[-3000:]}")


def test_rest_dispatch_creates_one_run_per_fingerprint(api_server: tuple[str, str]) -> None:
    base_url, password = api_server
    fingerprint = "cd" * 32
    conf = {"incident": {"pipeline": PIPELINE_DAG_ID, "error": "ValueError: boom"}}

    with pytest.raises(DispatchError, match="HTTP 401 .*check the token"):
        RestDispatcher(base_url).dispatch(dag_id=REPAIR_DAG_ID, fingerprint=fingerprint, conf=conf)
    with pytest.raises(DispatchError, match="rejected the credentials of 'selfheal'"):
        RestDispatcher(base_url, username="selfheal", password="wrong").dispatch(
            dag_id=REPAIR_DAG_ID, fingerprint=fingerprint, conf=conf
        )
    with pytest.raises(DispatchError, match="DAG 'selfheal_probe_missing' not found.*deployed"):
        RestDispatcher(base_url, username="selfheal", password=password).dispatch(
            dag_id="selfheal_probe_missing", fingerprint=fingerprint, conf=conf
        )

    dispatcher = RestDispatcher(base_url, username="selfheal", password=password)
    first = dispatcher.dispatch(dag_id=REPAIR_DAG_ID, fingerprint=fingerprint, conf=conf)
    second = RestDispatcher(base_url, username="selfheal", password=password).dispatch(
        dag_id=REPAIR_DAG_ID, fingerprint=fingerprint, conf={"other": True}
    )

    run_id = "selfheal__" + "cd" * 8
    assert (first.created, first.run_id, first.via) == (True, run_id, "rest")
    assert (second.created, second.run_id) == (False, run_id)
    runs = [run for run in _repair_runs() if run.run_id == run_id]
    assert len(runs) == 1
    assert runs[0].conf == conf
    assert runs[0].logical_date is None
