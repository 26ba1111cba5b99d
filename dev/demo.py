"""`make demo`: the whole self-healing loop, with real dbt, cosmos and Airflow on the embedded warehouse.

Steps, each printed as it happens:
1. start the embedded Snowflake stand-in on loopback and load the raw shop data through the real connector;
2. make a git copy of the demo dbt project (the deploy repo, with a bare ``origin``), build its manifest
   (`dbt parse`) and a fresh SQLite metadata DB;
3. run the cosmos pipeline DAG with ``dag.test()``: it succeeds and records the source schema baseline;
4. inject the ``rename_column`` scenario (raw.orders.CUSTOMER_EMAIL becomes EMAIL_ADDRESS) and run it again:
   it fails; the drift check names the rename, and the failure callback records an incident and requests a
   repair run;
5. run the repair DAG with the incident (``dag.test()``; there is no scheduler here): triage, clone, a rule's
   fix in a sandbox, validation in the clone, the page; a person approves through the Airflow REST API of a real
   api-server (the UI's own call); the fix is merged in the project's git repo and prod re-runs green;
6. run the pipeline a third time: green; then time a bare ``dbt build --select <failed>+`` on the same machine
   and print the timeline with the machine MTTR (failure -> validated proposal paged) and their ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev import airflow_env
from dev.warehouse import DEFAULT_PORT, REPO_ROOT, Warehouse, start, stop

if TYPE_CHECKING:
    from dev.receivers import Receiver

DEMO_DIR = REPO_ROOT / ".demo"
LOG_FILE = DEMO_DIR / "demo.log"
PIPELINE_DAG_ID = "shop_pipeline"
_terminal = sys.stdout


def say(message: str) -> None:
    line = f"[demo {time.strftime('%H:%M:%S')}] {message}"
    print(line, file=_terminal, flush=True)
    if sys.stdout is not _terminal:
        print(line, flush=True)


def quiet_terminal() -> None:
    """Send everything Airflow, cosmos and dbt print to the log file; the terminal keeps the narrative."""
    global _terminal
    sys.stdout.flush()
    sys.stderr.flush()
    _terminal = os.fdopen(os.dup(1), "w", buffering=1)
    log_fd = os.open(LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def failure_recorder(record_file: Path) -> Any:
    """A task failure callback that records what Airflow and cosmos hand to it (the dbt node, the error)."""

    def record(context: dict[str, Any]) -> None:
        node = context.get("dbt_node_config") or {}
        entry = {
            "task_id": context["ti"].task_id,
            "dbt_node": node.get("unique_id"),
            "resource_type": str(node.get("resource_type")),
            "file_path": str(node.get("file_path")),
            "error": str(context.get("exception")),
        }
        with record_file.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")

    return record


def run_pipeline(record_file: Path) -> tuple[str, dict[str, str], str]:
    """Run the pipeline DAG from the dags folder with ``dag.test()``; return the run state and task states."""
    from airflow.dag_processing.dagbag import DagBag

    dagbag = DagBag(dag_folder=str(airflow_env.DAGS_FOLDER))
    if PIPELINE_DAG_ID not in dagbag.dags:
        raise SystemExit(f"the pipeline DAG did not load: {dagbag.import_errors}")
    dag = dagbag.dags[PIPELINE_DAG_ID]
    recorder = failure_recorder(record_file)
    for task in dag.tasks:
        # Keep the pipeline's own callbacks (the incident capture) and listen alongside them.
        existing = task.on_failure_callback
        existing = [] if existing is None else list(existing) if isinstance(existing, list) else [existing]
        task.on_failure_callback = [*existing, recorder]
    dag_run = dag.test()
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return str(dag_run.state), states, dag_run.run_id


def show_drift(run_id: str) -> None:
    report: Any = airflow_env.task_result(PIPELINE_DAG_ID, run_id, "check_source_drift") or {}
    say(f"  drift check (before dbt ran): {report.get('headline')}")
    for event in report.get("events", []):
        say(f"    {event['message']}")


def show_incidents() -> None:
    """What the failure callback captured, and whether it started the repair DAG."""
    from airflow.models import DagRun

    from airflow_selfheal.config import get_settings
    from airflow_selfheal.records.incidents import IncidentStore

    repair_dag_id = get_settings().repair_dag_id
    for incident in IncidentStore().list():
        triage: Any = incident.triage or {}
        nodes = ", ".join(node.unique_id for node in incident.nodes)
        say(f"  incident {incident.incident_id}: {nodes}")
        say(
            f"    class {triage.get('failure_class')} -> action {triage.get('action')}: {triage.get('summary')}"
        )
        root_cause = triage.get("root_cause") or {}
        if root_cause:
            say(f"    root cause: {root_cause.get('message')}")
        say(f"    fingerprint {incident.fingerprint[:16]}, evidence stored on the artifacts root")
        runs = [run.run_id for run in DagRun.find(dag_id=repair_dag_id)]
        if runs:
            say(f"    repair run requested: {repair_dag_id} / {', '.join(runs)}")
        else:
            say(
                f"    repair run not started: the repair DAG {repair_dag_id!r} is not part of this release yet"
            )


def ti_times(dag_id: str, run_id: str) -> dict[str, tuple[Any, Any, str]]:
    """Each task's ``(start_date, end_date, state)`` in a run, from the metadata DB."""
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id).all()
        return {ti.task_id: (ti.start_date, ti.end_date, str(ti.state)) for ti in rows}


def configure_oncall(url: str) -> None:
    """Point the repair DAG's Slack and PagerDuty connections at the local receiver."""
    from airflow.models.connection import Connection

    slack = Connection(conn_id="demo_slack", conn_type="slackwebhook", password=f"{url}/services/T0/B0/demo")
    pagerduty = Connection(
        conn_id="demo_pagerduty", conn_type="pagerduty_events", host=url, password="d" * 32
    )
    os.environ["AIRFLOW_CONN_DEMO_SLACK"] = slack.as_json()
    os.environ["AIRFLOW_CONN_DEMO_PAGERDUTY"] = pagerduty.as_json()
    os.environ["SELFHEAL_SLACK_CONN_ID"] = "demo_slack"
    os.environ["SELFHEAL_PAGERDUTY_CONN_ID"] = "demo_pagerduty"


def show_pages(oncall: Receiver) -> None:
    """What on-call received: each PagerDuty event and Slack message, in order."""
    for delivery in oncall.deliveries:
        body = delivery.json()
        if delivery.path.startswith("/v2/enqueue"):
            details = (body.get("payload") or {}).get("custom_details") or {}
            say(f"  PagerDuty {body['event_action']}: {(body.get('payload') or {}).get('summary', '')}")
            if details.get("approval_link"):
                say(f"    approval link: {details['approval_link']}")
        else:
            say(f"  Slack: {str(body.get('text', ''))[:110]}")


def repair_loop(base_url: str, project: Path, origin: Path, failed_at: float, oncall: Receiver) -> int:
    """Run the requested repair with an approval through the REST API; print the timeline and the MTTR."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models import DagRun

    from airflow_selfheal.config import get_settings
    from airflow_selfheal.records.audit import AuditLog
    from dev.apiserver import answer_when_asked
    from dev.project_repo import git

    repair_dag_id = get_settings().repair_dag_id
    requested = DagRun.find(dag_id=repair_dag_id)
    if not requested:
        say(f"no repair run was requested for {repair_dag_id}; see {LOG_FILE.relative_to(REPO_ROOT)}")
        return 1
    conf = dict(requested[0].conf)
    incident_id = conf["incident_id"]
    dagbag = DagBag(dag_folder=str(airflow_env.DAGS_FOLDER))
    if repair_dag_id not in dagbag.dags:
        raise SystemExit(f"the repair DAG did not load: {dagbag.import_errors}")
    thread, answer = answer_when_asked(base_url, repair_dag_id, "approve", "Approve")
    say(f"repair run: dag.test() of {repair_dag_id} with the requested conf (incident {incident_id})")
    run = dagbag.dags[repair_dag_id].test(run_conf=conf)
    thread.join(timeout=30)
    if "error" in answer:
        say(f"the approval was not answered: {answer['error']}")
        return 1
    times = ti_times(repair_dag_id, run.run_id)
    decided: Any = airflow_env.task_result(repair_dag_id, run.run_id, "triage") or {}
    proposal: Any = _xcom(repair_dag_id, run.run_id, "validate", "result") or {}
    say(f"repair run finished: {run.state}")
    for task_id in (
        "triage", "route", "clone", "propose", "validate", "page", "approve", "promote", "rerun",
        "accept_baseline", "resolve", "cleanup",
    ):  # fmt: skip
        start, end, state = times.get(task_id, (None, None, "absent"))
        took = f"{(end - start).total_seconds():.1f}s" if start and end else "-"
        say(f"  {task_id:<16} {state:<10} {took}")
    if str(run.state) != "success":
        say(f"the repair run was expected to succeed; the task logs are in {LOG_FILE.relative_to(REPO_ROOT)}")
        return 1
    triage = decided.get("triage") or {}
    say(
        f"  triage: {triage.get('failure_class')} -> {decided.get('action')} (branch {decided.get('branch')!r})"
    )
    say(
        f"  proposal: {proposal.get('fix_type')} ({proposal.get('tier')} tier); changed {proposal.get('changed_files')}"
    )
    for line in str(proposal.get("diff") or "").splitlines()[:60]:
        say(f"    {line}")
    say(
        f"  validated in the clone: dbt build --select {proposal.get('validation', {}).get('select')} "
        f"({proposal.get('validation', {}).get('elapsed_seconds')}s)"
    )
    say("what on-call received:")
    show_pages(oncall)
    say("  approved through PATCH .../hitlDetails on the api-server, the call the UI's Approve button makes")
    say(f"  deploy repo: {git(origin, 'log', '--oneline', '-3', 'main')}".replace("\n", " | "))

    say(f"run 3: dag.test() of {PIPELINE_DAG_ID} with the promoted fix")
    state, tasks, run_id = run_pipeline(DEMO_DIR / "failures-after.jsonl")
    say(f"run 3 finished: {state} ({len(tasks)} tasks)")
    show_drift(run_id)

    select = proposal.get("validation", {}).get("select") or "stg_orders+"
    say(f"timing a bare `dbt build --select {select}` of the fixed project on this machine")
    bare = bare_build_seconds(project, select)

    page_end = times["page"][1]
    approve_start, approve_end, _ = times["approve"]
    rerun_end = times["rerun"][1]
    mttr = page_end.timestamp() - failed_at
    say("timeline (seconds after the failure):")
    say(f"  {0.0:6.1f} the dbt task fails; the callback records incident {incident_id}")
    for label, moment in (
        ("repair run starts (triage)", times["triage"][0]),
        ("clone ready", times["clone"][1]),
        ("fix validated in the clone", times["validate"][1]),
        ("on-call paged with the validated proposal", page_end),
        ("approval requested in the Airflow UI", approve_start),
        ("approved through the REST API", approve_end),
        ("fix merged into main", times["promote"][1]),
        ("prod re-run green", rerun_end),
    ):
        say(f"  {moment.timestamp() - failed_at:6.1f} {label}")
    repair_only = page_end.timestamp() - times["triage"][0].timestamp()
    say(f"machine MTTR (failure -> validated proposal paged): {mttr:.1f}s")
    say(
        f"  of which the repair run itself (triage -> page): {repair_only:.1f}s; the rest is dag.test() finishing "
        "the failed pipeline run first (a scheduler starts the repair run at once)"
    )
    say(
        f"bare `dbt build --select {select}` on this machine: {bare:.1f}s; "
        f"MTTR / bare build = {mttr / bare:.1f}x (repair run alone: {repair_only / bare:.1f}x)"
    )
    say("audit trail: " + AuditLog(incident_id).render_text().splitlines()[0])
    say(f"  full trail: AIRFLOW_HOME=.demo/airflow .venv/bin/airflow-selfheal audit show {incident_id}")
    return 0 if state == "success" else 1


def _xcom(dag_id: str, run_id: str, task_id: str, key: str) -> object:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id)
        ).first()
        return None if row is None else XComModel.deserialize_value(row)


def bare_build_seconds(project: Path, select: str) -> float:
    """Wall time of ``dbt build --select <select>`` in a fresh process, as a deploy job would run it."""
    import subprocess

    dbt = Path(sys.executable).with_name("dbt")
    work = DEMO_DIR / "bare-build"
    command = [str(dbt), "build", "--select", *select.split(), "--project-dir", str(project)]
    command += [
        "--profiles-dir",
        str(project),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work),
    ]
    started = time.monotonic()
    completed = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if completed.returncode != 0:
        raise RuntimeError(f"the bare dbt build failed: {completed.stdout[-2000:]}")
    return elapsed


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    quiet_terminal()
    say(f"full Airflow, cosmos and dbt output goes to {LOG_FILE.relative_to(REPO_ROOT)}")
    port = int(os.environ.get("SELFHEAL_WAREHOUSE_PORT", DEFAULT_PORT))
    say(f"starting the embedded Snowflake stand-in on 127.0.0.1:{port}")
    warehouse: Warehouse = start(port=port, data_dir=DEMO_DIR / "warehouse")
    servers = contextlib.ExitStack()
    try:
        airflow_env.apply(airflow_env.airflow_environ(DEMO_DIR / "airflow", warehouse))
        from dev.project_repo import git_copy

        project, origin = git_copy(DEMO_DIR)
        os.environ["SELFHEAL_DBT_PROJECT_DIR"] = str(project)
        os.environ["SELFHEAL_DBT_MANIFEST"] = str(project / "target" / "manifest.json")
        say(
            f"dbt project: a git copy at {project.relative_to(REPO_ROOT)} on main, origin {origin.relative_to(REPO_ROOT)}"
        )
        from dev.loader import load_raw
        from dev.scenarios import SCENARIOS

        with warehouse.connect() as conn:
            counts = load_raw(conn)
        say("loaded raw data: " + ", ".join(f"{table} {rows} rows" for table, rows in counts.items()))
        airflow_env.dbt_parse(project)
        airflow_env.migrate_db()
        say("dbt manifest built, Airflow metadata DB migrated")
        from dev.apiserver import running_api_server
        from dev.receivers import http_receiver

        base_url = servers.enter_context(running_api_server(DEMO_DIR / "api-server.log"))
        os.environ["AIRFLOW__API__BASE_URL"] = base_url
        say(f"Airflow api-server on {base_url} (approvals go through its REST API, as from the UI)")
        oncall = servers.enter_context(http_receiver())
        configure_oncall(oncall.url)
        say(f"on-call: Slack and PagerDuty Events v2 are a local HTTP receiver on {oncall.url}")

        record_file = DEMO_DIR / "failures.jsonl"
        say(f"run 1: dag.test() of {PIPELINE_DAG_ID} on clean data")
        started = time.monotonic()
        state, tasks, run_id = run_pipeline(record_file)
        say(f"run 1 finished: {state} ({len(tasks)} tasks, {time.monotonic() - started:.1f}s)")
        show_drift(run_id)
        snapshot: Any = airflow_env.task_result(PIPELINE_DAG_ID, run_id, "snapshot_sources") or {}
        say(
            f"  schema baseline recorded after the green build: {snapshot.get('tables')} tables, accepted={snapshot.get('accepted')}"
        )
        if state != "success":
            say("run 1 was expected to succeed; task states: " + json.dumps(tasks))
            return 1

        scenario = SCENARIOS["rename_column"]
        with warehouse.connect() as conn:
            scenario.apply(conn)
        say(f"injected drift scenario {scenario.name!r}: {scenario.description}")

        say(f"run 2: dag.test() of {PIPELINE_DAG_ID} after the upstream change")
        state, tasks, run_id = run_pipeline(record_file)
        failed_tis = [v for v in ti_times(PIPELINE_DAG_ID, run_id).values() if v[2] == "failed" and v[1]]
        failed_at = min(end for _, end, _ in failed_tis).timestamp() if failed_tis else time.time()
        failed = sorted(task for task, task_state in tasks.items() if task_state == "failed")
        skipped = sum(1 for task_state in tasks.values() if task_state == "upstream_failed")
        say(f"run 2 finished: {state}; failed tasks: {', '.join(failed)}; {skipped} downstream tasks not run")
        show_drift(run_id)
        for line in record_file.read_text().splitlines():
            entry = json.loads(line)
            path = Path(entry["file_path"])
            shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
            say(f"  failing dbt node: {entry['dbt_node']} ({shown})")
            error_lines = [part.strip() for part in entry["error"].splitlines() if part.strip()]
            for part in error_lines[:6]:
                say(f"    warehouse error: {part}")
        show_incidents()
        if state != "failed":
            say("run 2 was expected to fail")
            return 1

        try:
            return repair_loop(base_url, project, origin, failed_at, oncall)
        finally:
            with warehouse.connect() as conn:
                scenario.reset(conn)
    finally:
        servers.close()
        stop(warehouse.data_dir)
        say("api-server and embedded warehouse stopped")


def run() -> int:
    """Run the demo; a crash is reported on the terminal too, since stderr goes to the log file."""
    try:
        return main()
    except Exception as exc:
        say(f"the demo failed: {type(exc).__name__}: {exc} (traceback in {LOG_FILE.relative_to(REPO_ROOT)})")
        raise


if __name__ == "__main__":
    sys.exit(run())
