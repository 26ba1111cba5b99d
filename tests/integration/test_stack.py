"""The real deployment of `make up`: scheduler, two Celery workers, PostgreSQL, Redis, S3, approval in a browser.

Nothing is mocked. The stack runs as separate processes (``dev/stack.py``), each worker with its own temp dir and
git checkout; artifacts live on the loopback S3 server; on-call is the stack's inbox. A person is played by
headless Chromium (Debian's, through Debian's chromedriver) signing in on the UI's login form.

One stack serves the module, in this order:
1. a green pipeline run records the schema baseline;
2. ``rename_column``: the scheduler starts the repair run at once; the fix waits for approval, nothing is
   promoted before it; the browser approves; promotion lands on the deploy branch, prod re-runs green, the page
   is resolved, and the repair's tasks ran on both workers;
3. ``rename_table``: a worker and the scheduler are killed while the fix is validated; the supervisor restarts
   them; the run fails cleanly (the lost task fails, on-call is told, nothing is applied); on-call clears the
   failed task, validation runs again on a live worker, and the browser rejects: still nothing applied.

Screenshots go to ``SELFHEAL_SCREENSHOTS`` (default: the test's temp folder).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dev.stack import (
    DEFAULT_PORTS,
    PIPELINE_DAG_ID,
    REPAIR_DAG_ID,
    UI_USER,
    WORKERS,
    StackClient,
    State,
    down,
    group_members,
    inbox_deliveries,
    scenario_command,
    stack_processes,
    up,
)
from dev.warehouse import Warehouse, free_port
from tests.support.browser import UiUser, chromium

pytestmark = [pytest.mark.integration, pytest.mark.stack]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    folder = tmp_path_factory.mktemp("stack")
    ports = {name: free_port() for name in DEFAULT_PORTS}
    state = up(folder, ports)
    try:
        yield state
    finally:
        down(folder)
        # make down's promise: no process of the stack is left behind.
        assert stack_processes(folder) == []
        assert all(not group_members(pid) for pid in state.pids.values())


@pytest.fixture(scope="module")
def client(stack: State) -> StackClient:
    client = StackClient(stack)
    run_id = client.trigger(PIPELINE_DAG_ID)
    run = client.wait_run(PIPELINE_DAG_ID, run_id, timeout=1200)
    assert run["state"] == "success", client.task_instances(PIPELINE_DAG_ID, run_id)
    return client


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("SELFHEAL_SCREENSHOTS")
    return Path(configured) if configured else tmp_path_factory.mktemp("screenshots")


def origin_head(state: State) -> str:
    return git(state.origin, "rev-parse", "main")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def warehouse(state: State) -> Warehouse:
    return Warehouse("127.0.0.1", state.ports["warehouse"], Path(state.dir) / "warehouse")


def prod_reads(state: State, relation: str) -> bool:
    """Whether ``DEMO.<relation>`` can be read in prod (a view over a renamed column cannot)."""
    try:
        with warehouse(state).connect() as conn:
            conn.cursor().execute(f"select count(*) from DEMO.{relation}").fetchone()
        return True
    except Exception:  # noqa: BLE001 - the warehouse's error is the answer
        return False


def fail_pipeline(state: State, client: StackClient, scenario: str) -> tuple[str, str]:
    """Inject ``scenario``, run the pipeline, and return the failed run's id and the repair run it started."""
    since = client.runs(REPAIR_DAG_ID)
    scenario_command(state, "inject", scenario)
    run_id = client.trigger(PIPELINE_DAG_ID)
    known = {run["dag_run_id"] for run in since}

    def pipeline_passed() -> bool:
        """the pipeline passed after the scenario; nothing to repair"""
        return bool(client.run(PIPELINE_DAG_ID, run_id)["state"] == "success")

    return run_id, client.wait_new_run(REPAIR_DAG_ID, known, timeout=600, unless=pipeline_passed)


def incident_subject(repair_run: str) -> str:
    """The part of the approval's subject that names this run's incident (the list keeps answered ones too)."""
    return "promote the fix for inc-" + repair_run.removeprefix("selfheal__")


def states(client: StackClient, run_id: str) -> dict[str, dict[str, Any]]:
    return {ti["task_id"]: ti for ti in client.task_instances(REPAIR_DAG_ID, run_id)}


def test_approve_in_the_browser(stack: State, client: StackClient, screenshots: Path) -> None:
    before = origin_head(stack)
    failed_run, repair_run = fail_pipeline(stack, client, "rename_column")
    client.wait_task(REPAIR_DAG_ID, repair_run, "approve", ("awaiting_input",), timeout=900)

    # Waiting for a person: nothing promoted, prod still broken.
    assert origin_head(stack) == before
    assert not prod_reads(stack, "ANALYTICS.STG_ORDERS")
    pages = [d for d in inbox_deliveries(stack) if d["path"].startswith("/v2/enqueue")]
    assert pages
    assert pages[-1]["body"]["event_action"] == "trigger"
    approval_link = pages[-1]["body"]["payload"]["custom_details"]["approval_link"]
    assert approval_link.startswith(stack.api_url)
    assert repair_run in approval_link

    with chromium() as driver:
        person = UiUser(driver, stack.api_url, screenshots)
        person.sign_in(UI_USER, stack.password)
        shown = person.open_required_action(incident_subject(repair_run))
        assert "Diagnosis" in shown
        assert "missing_column" in shown
        assert "+++ b/models/staging/stg_orders.sql" in shown
        assert "email_address as customer_email" in shown
        assert "Validation" in shown
        assert "passed" in shown
        person.screenshot("approval-page")
        person.screenshot_full("approval-page-full")
        person.click_button("Approve")
        person.wait_text("response successful", timeout=30)
        person.screenshot("approved")

    run = client.wait_run(REPAIR_DAG_ID, repair_run, timeout=900)
    tis = states(client, repair_run)
    assert run["state"] == "success", {name: ti["state"] for name, ti in tis.items()}
    assert tis["promote"]["state"] == "success"
    assert tis["rerun"]["state"] == "success"
    # Promotion landed on the deploy branch; prod re-ran green at that commit.
    assert origin_head(stack) != before
    assert "email_address as customer_email" in git(
        stack.origin, "show", "main:models/staging/stg_orders.sql"
    )
    assert prod_reads(stack, "ANALYTICS.STG_ORDERS")
    # The page was resolved.
    resolves = [
        d for d in inbox_deliveries(stack)
        if d["path"].startswith("/v2/enqueue") and d["body"]["event_action"] == "resolve"
    ]  # fmt: skip
    assert resolves
    assert resolves[-1]["body"]["dedup_key"] == pages[-1]["body"]["dedup_key"]
    # Consecutive repair tasks ran on different workers, and the run still succeeded.
    ran_on = {ti["hostname"] for ti in tis.values() if ti["state"] == "success"}
    assert ran_on == set(WORKERS), ran_on


def test_killed_worker_and_scheduler_then_reject(
    stack: State, client: StackClient, screenshots: Path
) -> None:
    before = origin_head(stack)
    _, repair_run = fail_pipeline(stack, client, "rename_table")
    validating = client.wait_task(REPAIR_DAG_ID, repair_run, "validate", ("running",), timeout=900)
    victim = validating["hostname"]
    assert victim in WORKERS
    current = State.load(Path(stack.dir))
    # A machine lost mid-repair: the worker and everything it forked, and the scheduler, at once.
    for name in (victim, "scheduler"):
        os.killpg(current.pids[name], signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        restarted = State.load(Path(stack.dir))
        if all(restarted.restarts.get(name, 0) >= 1 for name in (victim, "scheduler")):
            break
        assert time.monotonic() < deadline, f"the supervisor did not restart {victim} and the scheduler"
        time.sleep(1)

    # The lost task fails once its heartbeat times out; the run fails cleanly and tells on-call.
    run = client.wait_run(REPAIR_DAG_ID, repair_run, timeout=600)
    tis = states(client, repair_run)
    assert run["state"] == "failed", {name: ti["state"] for name, ti in tis.items()}
    assert tis["validate"]["state"] == "failed"
    assert tis["promote"]["state"] in (None, "upstream_failed", "skipped")
    assert tis["escalate_failure"]["state"] == "success"
    assert origin_head(stack) == before
    assert not prod_reads(stack, "ANALYTICS.STG_PRODUCTS")

    # On-call clears the clone and what follows it (cleanup dropped the clone when the run failed): a fresh clone,
    # validation again on a live worker, and a new request for approval.
    client.request(
        "POST",
        f"/api/v2/dags/{REPAIR_DAG_ID}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": repair_run,
            "task_ids": ["clone"],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    client.wait_task(REPAIR_DAG_ID, repair_run, "approve", ("awaiting_input",), timeout=900)
    assert origin_head(stack) == before

    with chromium() as driver:
        person = UiUser(driver, stack.api_url, screenshots)
        person.sign_in(UI_USER, stack.password)
        shown = person.open_required_action(incident_subject(repair_run))
        assert "missing_relation" in shown
        person.click_button("Reject")
        person.wait_text("response successful", timeout=30)
        person.screenshot("rejected")

    client.wait_run(REPAIR_DAG_ID, repair_run, timeout=600)
    tis = states(client, repair_run)
    assert tis["approve"]["state"] == "success"
    assert tis["promote"]["state"] == "skipped"
    # Rejected: nothing applied, prod as the failure left it.
    assert origin_head(stack) == before
    assert not prod_reads(stack, "ANALYTICS.STG_PRODUCTS")
