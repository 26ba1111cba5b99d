"""Issue 5's acceptance: rename drift -> the pipeline fails (a real incident) -> the repair DAG runs with that conf
-> a validated proposal -> approval answered through ``PATCH …/hitlDetails`` on a real api-server -> promotion into
the dbt project's git repo -> the failed selector re-runs green in prod, and so does the pipeline.

The dbt project is a git *copy* of ``dev/demo_project`` with a bare ``origin`` (the repo's own copy is never
touched). The pipeline (``dags/shop_pipeline.py``) and the repair DAG (``dags/selfheal_repair.py``) are copied
verbatim into a temp DAG bundle and configured through the environment, as a deployment would be.

The reject run comes first, then a run whose approval times out (a second repair DAG built with a 5-second
``response_timeout``): neither applies anything. Prod's fingerprint (every table's schema and contents) is the
same before each repair run and at the moment its approval is answered or expires.

Slack and PagerDuty are local HTTP receivers. ``dag.test()`` has no scheduler, and since Airflow 3.3 the
scheduler's ``check_awaiting_input_timeouts`` sweep is what expires an unanswered approval; the timeout test
calls that real scheduler method from a helper thread instead of running a second scheduler against
``dag.test()``'s run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev import airflow_env
from dev.apiserver import running_api_server
from dev.e2e import Approver
from dev.project_repo import git, git_copy
from dev.receivers import http_receiver
from tests.support.demo import fingerprint, tree_hash

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse
    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIPELINE = "shop_pipeline"
REPAIR_DAG_ID = "selfheal_repair_e2e"
TIMEOUT_DAG_ID = "selfheal_repair_timeout"
BUNDLE = "selfheal-repair-e2e"
STG_ORDERS = "models/staging/stg_orders.sql"
TIMEOUT_DAG = """
import os
from datetime import timedelta

from airflow_selfheal.dags.repair import build_repair_dag
from airflow_selfheal.repair import RepairConfig

dag = build_repair_dag(
    "selfheal_repair_timeout",
    config=RepairConfig(
        project_dir=os.environ["SELFHEAL_DBT_PROJECT_DIR"],
        manifest_path=os.environ["SELFHEAL_DBT_MANIFEST"],
        snowflake_conn_id="selfheal_warehouse",
        prod_database="DEMO",
        slack_conn_id=os.environ["SELFHEAL_SLACK_CONN_ID"],
        pagerduty_conn_id=os.environ["SELFHEAL_PAGERDUTY_CONN_ID"],
        approval_timeout=timedelta(seconds=5),
    ),
)
"""


def dbt_build(project: Path, work: Path, *select: str) -> subprocess.CompletedProcess[str]:
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(project), "--quiet"]
    command += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    command += [arg for item in select for arg in ("--select", item)]
    return subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def stack(
    warehouse: Warehouse,
    module_dag_bundles: DagBundles,
    demo_manifest: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """Prod built from the project copy, the baseline accepted, both DAGs in a synced bundle, an api-server."""
    from airflow.models.connection import Connection

    from airflow_selfheal.cli import main
    from dev.loader import load_raw

    root = tmp_path_factory.mktemp("repair-e2e")
    project, origin = git_copy(root)
    manifest = airflow_env.dbt_parse(project)
    folder = root / "dags"
    folder.mkdir()
    shutil.copy(airflow_env.DAGS_FOLDER / "dbt_pipeline.py", folder / "dbt_pipeline.py")
    shutil.copy(airflow_env.DAGS_FOLDER / "selfheal_repair.py", folder / "selfheal_repair.py")
    (folder / "selfheal_repair_timeout.py").write_text(TIMEOUT_DAG)
    patch = pytest.MonkeyPatch()
    receiver_block = http_receiver()
    receiver = receiver_block.__enter__()
    slack = Connection(
        conn_id="slack_oncall", conn_type="slackwebhook", password=f"{receiver.url}/services/T/B/C"
    )
    pagerduty = Connection(
        conn_id="pd_oncall", conn_type="pagerduty_events", host=receiver.url, password="k" * 32
    )
    environ = {
        "AIRFLOW_CONN_SLACK_ONCALL": slack.as_json(),
        "AIRFLOW_CONN_PD_ONCALL": pagerduty.as_json(),
        "SELFHEAL_SLACK_CONN_ID": "slack_oncall",
        "SELFHEAL_PAGERDUTY_CONN_ID": "pd_oncall",
        "AIRFLOW__SELFHEAL__REPAIR_DAG_ID": REPAIR_DAG_ID,
        "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": str(root / "artifacts"),
        "AIRFLOW__SELFHEAL__ENVIRONMENT": "ci",
        "SELFHEAL_DBT_PROJECT_DIR": str(project),
        "SELFHEAL_DBT_MANIFEST": str(manifest),
        "SELFHEAL_PROD_DATABASE": "DEMO",
    }
    for key, value in environ.items():
        patch.setenv(key, value)
    patch.chdir(root)
    try:
        with warehouse.connect() as conn:
            load_raw(conn)
        built = dbt_build(project, root / "prod-build")
        assert built.returncode == 0, built.stdout + built.stderr
        snapshot = ["drift", "snapshot", "shop_raw", "--conn-id", airflow_env.WAREHOUSE_CONN_ID]
        assert main([*snapshot, "--manifest", str(manifest), "--accept"]) == 0
        bag = module_dag_bundles.sync(BUNDLE, folder)
        with running_api_server(root / "api-server.log") as base_url:
            # The pages' approval links point at this api-server's UI.
            patch.setenv("AIRFLOW__API__BASE_URL", base_url)
            yield {
                "root": root,
                "project": project,
                "origin": origin,
                "bag": bag,
                "base_url": base_url,
                "warehouse": warehouse,
                "receiver": receiver,
            }
    finally:
        patch.undo()
        receiver_block.__exit__(None, None, None)


@pytest.fixture(scope="module")
def failed(stack: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The rename applied and the pipeline failed: the repair run's conf, as the failure callback created it."""
    from airflow.models import DagRun

    from dev.scenarios import SCENARIOS

    scenario = SCENARIOS["rename_column"]
    with stack["warehouse"].connect() as conn:
        scenario.apply(conn)
    try:
        run = stack["bag"].dags[PIPELINE].test()
        assert str(run.state) == "failed"
        (repair_run,) = DagRun.find(dag_id=REPAIR_DAG_ID)
        yield dict(repair_run.conf)
    finally:
        with stack["warehouse"].connect() as conn:
            scenario.reset(conn)


def repair(
    stack: dict[str, Any], conf: dict[str, Any], option: str
) -> tuple[Any, dict[str, Any], dict[str, str]]:
    with stack["warehouse"].connect() as conn:
        prod_before = fingerprint(conn)
    player = Approver(stack["base_url"], REPAIR_DAG_ID, stack["warehouse"], "DEMO", option)
    run = stack["bag"].dags[REPAIR_DAG_ID].test(run_conf=conf)
    player.thread.join(timeout=30)
    assert "error" not in player.outcome, player.outcome
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return run, player.outcome, {"prod_before": prod_before, **states}


def pagerduty_events(stack: dict[str, Any], dedup_key: str) -> list[dict[str, Any]]:
    """The PagerDuty events the receiver got for ``dedup_key``, oldest first; cleared after reading."""
    receiver = stack["receiver"]
    events = [d.json() for d in receiver.deliveries if d.path.startswith("/v2/enqueue")]
    slack = [d.json() for d in receiver.deliveries if d.path.startswith("/services")]
    receiver.deliveries.clear()
    stack["slack"] = slack
    return [event for event in events if event.get("dedup_key") == dedup_key]


class Sweeper:
    """Plays the scheduler's part that ``dag.test()`` lacks: the AWAITING_INPUT timeout sweep."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.outcome: dict[str, Any] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.play, daemon=True)
        self.thread.start()

    def play(self) -> None:
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState

        runner = SchedulerJobRunner(job=Job(), executors=[])
        deadline = time.monotonic() + 900
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                with create_session() as session:
                    waiting = (
                        session.query(TaskInstance)
                        .filter_by(
                            dag_id=TIMEOUT_DAG_ID, task_id="approve", state=TaskInstanceState.AWAITING_INPUT
                        )
                        .count()
                    )
                if waiting and "prod_at_expiry" not in self.outcome:
                    with self.warehouse.connect() as conn:
                        self.outcome["prod_at_expiry"] = fingerprint(conn)
                if waiting:
                    runner.check_awaiting_input_timeouts()
                time.sleep(1)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            self.outcome["error"] = f"{type(exc).__name__}: {exc}"


def test_reject_applies_nothing(stack: dict[str, Any], failed: dict[str, Any]) -> None:
    from airflow_selfheal.records.audit import AuditLog

    project, origin = stack["project"], stack["origin"]
    head_before, tree_before = git(origin, "rev-parse", "main"), tree_hash(project)
    run, outcome, states = repair(stack, failed, "Reject")
    prod_before = states.pop("prod_before")
    assert outcome["prod_at_approval"] == prod_before
    assert outcome["asked"]["subject"].startswith("selfheal: promote the fix for inc-")
    body = outcome["asked"]["body"]
    assert "+    email_address as customer_email," in body
    assert "### Data diff (clone vs prod)" in body
    assert states["approve"] == "success"
    assert states["promote"] == states["rerun"] == states["resolve"] == "skipped"
    assert states["cleanup"] == "success"
    with stack["warehouse"].connect() as conn:
        assert fingerprint(conn) == prod_before
    assert git(origin, "rev-parse", "main") == head_before
    assert tree_hash(project) == tree_before
    assert AuditLog(failed["incident_id"]).summary()["outcome"] == "rejected"
    # On-call got the proposal with the approval link, and the page was resolved by the rejection.
    events = pagerduty_events(stack, failed["fingerprint"])
    assert [event["event_action"] for event in events] == ["trigger", "resolve"]
    details = events[0]["payload"]["custom_details"]
    assert details["approval_link"].startswith(f"{stack['base_url']}/dags/{REPAIR_DAG_ID}/runs/")
    assert details["approval_link"].split("?")[0].endswith("/tasks/approve/required_actions")
    assert any("email_address as customer_email" in json.dumps(message) for message in stack["slack"])


def test_timeout_escalates_and_applies_nothing(stack: dict[str, Any], failed: dict[str, Any]) -> None:
    from airflow_selfheal.records.audit import AuditLog

    project, origin = stack["project"], stack["origin"]
    head_before, tree_before = git(origin, "rev-parse", "main"), tree_hash(project)
    with stack["warehouse"].connect() as conn:
        prod_before = fingerprint(conn)
    sweeper = Sweeper(stack["warehouse"])
    try:
        run = stack["bag"].dags[TIMEOUT_DAG_ID].test(run_conf=failed)
    finally:
        sweeper.stop.set()
        sweeper.thread.join(timeout=30)
    assert "error" not in sweeper.outcome, sweeper.outcome
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states["approve"] == "failed", states
    assert states["unanswered"] == "success", states
    assert states["promote"] == states["rerun"] == states["resolve"] == "upstream_failed", states
    assert states["cleanup"] == "success", states
    assert sweeper.outcome["prod_at_expiry"] == prod_before
    with stack["warehouse"].connect() as conn:
        assert fingerprint(conn) == prod_before
    assert git(origin, "rev-parse", "main") == head_before
    assert tree_hash(project) == tree_before
    summary = AuditLog(failed["incident_id"]).summary()
    assert summary["outcome"] == "timed_out"
    # The proposal page, then the escalation (a trigger again on the same dedup key, so PagerDuty keeps one incident).
    events = pagerduty_events(stack, failed["fingerprint"])
    assert [event["event_action"] for event in events] == ["trigger", "trigger"]
    assert "timed out" in json.dumps(events[1])


def test_approve_promotes_and_prod_reruns_green(stack: dict[str, Any], failed: dict[str, Any]) -> None:
    from airflow_selfheal.records.audit import AuditLog

    project, origin = stack["project"], stack["origin"]
    head_before = git(origin, "rev-parse", "main")
    # The rename is still in place upstream (the failed fixture restores it when the module ends).
    run, outcome, states = repair(stack, failed, "Approve")
    prod_before = states.pop("prod_before")
    assert outcome["prod_at_approval"] == prod_before
    assert str(run.state) == "success", states
    for task_id in ("promote", "rerun", "accept_baseline", "resolve", "cleanup"):
        assert states[task_id] == "success", states
    # The fix is on origin's main, merged from selfheal/<incident>, and checked out in the live project.
    assert git(origin, "rev-parse", "main") != head_before
    # The fix commit sits on selfheal/<incident> in the project's repo, and origin's main contains it.
    fix_commit = git(project, "rev-parse", "--verify", f"selfheal/{failed['incident_id']}")
    git(origin, "merge-base", "--is-ancestor", fix_commit, "main")
    fixed = git(origin, "show", f"main:{STG_ORDERS}")
    assert "email_address as customer_email" in fixed
    assert (project / STG_ORDERS).read_text().strip() == fixed.strip()
    assert any(
        line.startswith("selfheal: ") for line in git(origin, "log", "--format=%s", "main").splitlines()
    )
    # The new schemas are the accepted baseline, so the next drift check is quiet.
    from airflow_selfheal.records.baselines import BaselineStore

    accepted = BaselineStore("shop_raw").history()[-1]
    assert failed["incident_id"] in accepted["reason"]
    # Prod now holds the fixed model, and the pipeline runs green again.
    pipeline = stack["bag"].dags[PIPELINE].test()
    assert str(pipeline.state) == "success"
    audit = AuditLog(failed["incident_id"]).summary()
    assert audit["outcome"] == "resolved"
    # The clone was asked for AT the failure time; the stand-in has no time travel, and the trail says so.
    clone = [e for e in AuditLog(failed["incident_id"]).entries() if e["step"] == "clone"][-1]
    assert "rejected AT(TIMESTAMP =>" in clone["details"]["at_ignored_reason"]
    events = pagerduty_events(stack, failed["fingerprint"])
    assert [event["event_action"] for event in events] == ["trigger", "resolve"]
