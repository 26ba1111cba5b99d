"""`make mttr`: the repair loop's time to a validated proposal under the real scheduler, against a bare build.

On a stack from ``make up`` (``python -m dev.stack mttr``), with nothing else running on it:

1. a green pipeline run records the baseline (skipped when one already succeeded);
2. ``rename_column`` is injected and the pipeline triggered; the failed dbt task's end is the start of the clock;
3. the clock stops when the on-call inbox receives the PagerDuty page with the validated proposal;
4. the fix is approved (the UI's own call) so that the loop completes and prod re-runs green;
5. a bare ``dbt build --select <failed model>+`` of the promoted commit runs on the same machine and stack.

It prints the two times and their ratio, and writes them as JSON with ``--report``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from dev.stack import (
    PIPELINE_DAG_ID,
    REPAIR_DAG_ID,
    StackClient,
    StackError,
    State,
    airflow_environ,
    inbox_deliveries,
    scenario_command,
)

SCENARIO = "rename_column"


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def say(message: str) -> None:
    print(f"[mttr {time.strftime('%H:%M:%S')}] {message}", flush=True)


def measure(state: State, report: Path | None) -> int:
    client = StackClient(state)
    if not any(run["state"] == "success" for run in client.runs(PIPELINE_DAG_ID)):
        say("a green pipeline run first, for the schema baseline")
        run_id = client.trigger(PIPELINE_DAG_ID)
        if client.wait_run(PIPELINE_DAG_ID, run_id, timeout=1800)["state"] != "success":
            raise StackError(f"the baseline run {run_id} failed; see the UI at {state.api_url}")
    known = {run["dag_run_id"] for run in client.runs(REPAIR_DAG_ID)}
    scenario_command(state, "inject", SCENARIO)
    pipeline_run = client.trigger(PIPELINE_DAG_ID)
    say(f"pipeline run {pipeline_run} triggered after {SCENARIO}")
    repair_run = client.wait_new_run(REPAIR_DAG_ID, known, timeout=900)
    client.wait_task(REPAIR_DAG_ID, repair_run, "approve", ("awaiting_input",), timeout=1200)
    failed = [
        ti for ti in client.task_instances(PIPELINE_DAG_ID, pipeline_run)
        if ti["state"] == "failed" and ti["end_date"]
    ]  # fmt: skip
    failed_at = min(_seconds(ti["end_date"]) for ti in failed)
    failed_task = min(failed, key=lambda ti: _seconds(ti["end_date"]))["task_id"]
    repair = client.run(REPAIR_DAG_ID, repair_run)
    started_at = _seconds(repair["start_date"])
    pages = [
        d for d in inbox_deliveries(state)
        if d["path"].startswith("/v2/enqueue") and d["body"].get("event_action") == "trigger"
        and repair_run.removeprefix("selfheal__") in str(d["body"].get("dedup_key"))
    ]  # fmt: skip
    if not pages:
        raise StackError(
            "the repair run is waiting for approval but no page with the proposal reached the inbox"
        )
    paged_at = float(pages[0]["received_at"])
    mttr = paged_at - failed_at
    say(f"failed task {failed_task}; repair run {repair_run} started {started_at - failed_at:.1f}s later")
    say(f"page with the validated proposal received {mttr:.1f}s after the failure")

    client.answer(repair_run, "Approve")
    outcome = client.wait_run(REPAIR_DAG_ID, repair_run, timeout=900)
    if outcome["state"] != "success":
        raise StackError(f"the approved repair run ended {outcome['state']}")
    say("approved; promoted and prod re-ran green")

    model = failed_task.split(".")[-2] if failed_task.count(".") >= 2 else failed_task
    bare = bare_build(state, f"{model}+")
    ratio = mttr / bare
    figures = {
        "scenario": SCENARIO,
        "failed_task": failed_task,
        "repair_run": repair_run,
        "repair_run_started_after_s": round(started_at - failed_at, 1),
        "mttr_to_validated_page_s": round(mttr, 1),
        "bare_build_select": f"{model}+",
        "bare_build_s": round(bare, 1),
        "ratio": round(ratio, 2),
        "executor": "CeleryExecutor, 2 workers",
    }
    say(f"bare `dbt build --select {model}+` of the promoted commit: {bare:.1f}s")
    say(f"MTTR (failure -> validated proposal paged) under the scheduler: {mttr:.1f}s; ratio {ratio:.2f}x")
    if report:
        report.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))
    return 0


def bare_build(state: State, select: str) -> float:
    """Wall time of ``dbt build --select <select>`` of origin's main, in a fresh process, against the stack."""
    env = {**os.environ, **airflow_environ(state)}
    dbt = str(Path(sys.executable).with_name("dbt"))
    with tempfile.TemporaryDirectory(prefix="selfheal-bare-") as work:
        project = Path(work) / "shop_dbt"
        subprocess.run(["git", "clone", "--quiet", str(state.origin), str(project)], check=True)
        command = [
            dbt,
            "build",
            "--select",
            select,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ]
        command += ["--target-path", str(Path(work) / "target"), "--log-path", work]
        started = time.monotonic()
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise StackError(f"the bare dbt build failed: {completed.stdout[-2000:]}")
    return elapsed
