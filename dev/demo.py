"""`make demo`: a real dbt pipeline in real Airflow against the embedded warehouse, then an upstream rename.

Steps, each printed as it happens:
1. start the embedded Snowflake stand-in on loopback and load the raw shop data through the real connector;
2. build the manifest (`dbt parse`) and a fresh SQLite metadata DB;
3. run the cosmos pipeline DAG with ``dag.test()``: it succeeds;
4. inject the ``rename_column`` scenario (raw.orders.CUSTOMER_EMAIL becomes EMAIL_ADDRESS) and run it again:
   it fails, and the demo prints the failing dbt model and the warehouse's own error;
5. reset the scenario and stop the warehouse.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from dev import airflow_env
from dev.warehouse import DEFAULT_PORT, REPO_ROOT, Warehouse, start, stop

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
    from airflow_selfheal.incidents import IncidentStore

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


def main() -> int:
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    quiet_terminal()
    say(f"full Airflow, cosmos and dbt output goes to {LOG_FILE.relative_to(REPO_ROOT)}")
    port = int(os.environ.get("SELFHEAL_WAREHOUSE_PORT", DEFAULT_PORT))
    say(f"starting the embedded Snowflake stand-in on 127.0.0.1:{port}")
    warehouse: Warehouse = start(port=port, data_dir=DEMO_DIR / "warehouse")
    try:
        airflow_env.apply(airflow_env.airflow_environ(DEMO_DIR / "airflow", warehouse))
        from dev.loader import load_raw
        from dev.scenarios import SCENARIOS

        with warehouse.connect() as conn:
            counts = load_raw(conn)
        say("loaded raw data: " + ", ".join(f"{table} {rows} rows" for table, rows in counts.items()))
        airflow_env.dbt_parse()
        airflow_env.migrate_db()
        say("dbt manifest built, Airflow metadata DB migrated")

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

        with warehouse.connect() as conn:
            scenario.reset(conn)
        say(f"reset scenario {scenario.name!r}; raw data restored")
        say("done. Next: the repair loop turns this failure into a validated fix (see README).")
        return 0
    finally:
        stop(warehouse.data_dir)
        say("embedded warehouse stopped")


def run() -> int:
    """Run the demo; a crash is reported on the terminal too, since stderr goes to the log file."""
    try:
        return main()
    except Exception as exc:
        say(f"the demo failed: {type(exc).__name__}: {exc} (traceback in {LOG_FILE.relative_to(REPO_ROOT)})")
        raise


if __name__ == "__main__":
    sys.exit(run())
