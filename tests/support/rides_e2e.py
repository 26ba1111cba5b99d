"""The second dev project (rides: bike share, CTE style, vars, freshness, an incremental mart) through the real loop.

Two test modules run the scenarios, so that ``make test`` (``-n 2 --dist loadfile``) runs them on both workers:

* ``tests/integration/test_rides_e2e_columns.py``: an upstream change to a column of an existing table (the
  failure classes in :data:`COLUMN_CLASSES`, and the scenarios that expect no incident at all);
* ``tests/integration/test_rides_e2e_tables_and_data.py``: everything else (a renamed or dropped table, data
  tests, freshness) and a warehouse outage before dbt runs.

Each module sets up its own stack (the ``e2e_stack`` fixture of ``tests/integration/conftest.py``). The switches
work the same in both:

* ``SELFHEAL_E2E_PROJECT=shop`` runs the demo shop's scenarios the same way (every scenario of its registry);
* ``SELFHEAL_E2E_SCENARIOS=a,b`` or ``=all`` chooses the scenarios, each in its module (a name the registry
  lacks fails in the columns module); ``make test`` runs :data:`DEFAULT_SCENARIOS`;
* ``SELFHEAL_E2E_REPORT=path.json`` keeps each scenario's timings: every module adds its entries when it ends,
  to the entries other modules of the same run wrote there (a file from an earlier run is replaced).

Each scenario injects an upstream change into ``PROJECT.LANDING``, runs the real pipeline DAG (the README's block,
with only the author's four settings changed) under ``dag.test()``, and runs every repair run its failure
callback requested, with the repair DAG built from the README's other block. The approval is answered through a
real api-server, as the UI does. Then:

* **repaired**: the fix is merged on the deploy branch, prod re-ran green, and the marts equal the oracles'
  values (computed in Python from the generated rows, apart from the SQL);
* **escalated**: on-call was paged with the reason, nothing was merged, and prod is what it was before the repair
  run (fingerprint of every table and view);
* **retried**: a warehouse outage before dbt ran is retried once the warehouse answers, and prod is rebuilt.

Between scenarios the project's git history, the raw data and prod are put back to the clean state. Slack and
PagerDuty are a local HTTP receiver.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev import airflow_env
from dev.e2e import Approver, database_fingerprint, dbt_command
from dev.project_repo import git
from dev.projects import PROJECTS

if TYPE_CHECKING:
    from dev.scenarios import Scenario
    from dev.warehouse import Warehouse

# `make test` runs the rides project; SELFHEAL_E2E_PROJECT=shop runs the same scenarios on the demo shop.
PROJECT = PROJECTS[os.environ.get("SELFHEAL_E2E_PROJECT", "rides")]
PIPELINE = f"{PROJECT.key}_e2e_pipeline"
REPAIR_DAG_ID = f"selfheal_repair_{PROJECT.key}_e2e"
CONN_ID = f"{PROJECT.key}_warehouse"
BUNDLE = f"selfheal-{PROJECT.key}-e2e"
# What `make test` runs: the list. SELFHEAL_E2E_SCENARIOS=all runs every scenario in the registry.
DEFAULT_SCENARIOS = (
    "rename_column",
    "change_type",
    "drop_unused_column",
    "rename_table",
    "duplicate_keys",
    "drop_column",
    "null_keys",
    "stale_source",
)
# The two modules, by the part of the upstream that changed. On the rides list each takes about half the time:
# three repairs and an escalation against two repairs, two escalations and the outage.
COLUMNS, TABLES_AND_DATA = "columns", "tables_and_data"
COLUMN_CLASSES = ("missing_column", "type_mismatch")
# Report entries written before this process imported this module (at collection) are an earlier run's. File
# times lag time.time() by up to a clock tick, hence the margin.
STARTED = time.time() - 0.1


def module_of(scenario: Scenario | None) -> str:
    """The module that runs ``scenario`` (:data:`COLUMNS` for a name the registry lacks, so that it fails)."""
    if (
        scenario is None
        or scenario.expected_class in COLUMN_CLASSES
        or scenario.expected_outcome == "no_incident"
    ):
        return COLUMNS
    return TABLES_AND_DATA


def scenario_names(module: str) -> list[str]:
    """The chosen scenarios (``SELFHEAL_E2E_SCENARIOS``, else the default list) that ``module`` runs, in order."""
    chosen = os.environ.get("SELFHEAL_E2E_SCENARIOS", "")
    if chosen == "all" or (not chosen and PROJECT.key != "rides"):
        names = list(PROJECT.scenarios)
    else:
        names = [name.strip() for name in chosen.split(",") if name.strip()] or list(DEFAULT_SCENARIOS)
    return [name for name in names if module_of(PROJECT.scenarios.get(name)) == module]


def conn_json(warehouse: Warehouse, port: int | None = None) -> str:
    """The project's connection (its database and model schema); ``port`` points it elsewhere (an outage)."""
    data = json.loads(warehouse.airflow_conn_uri(database=PROJECT.database, schema=PROJECT.target_schema))
    if port is not None:
        data["extra"]["port"] = port
    return json.dumps(data)


def run_dbt(project: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dbt_command(project, work, *args), env=os.environ.copy(), capture_output=True, text=True, check=False
    )


def write_report(entries: list[dict[str, Any]]) -> None:
    """Add a module's ``entries`` to ``SELFHEAL_E2E_REPORT`` (if set), after what this run's other modules wrote."""
    if not os.environ.get("SELFHEAL_E2E_REPORT"):
        return
    path = Path(os.environ["SELFHEAL_E2E_REPORT"])
    # The other module may end at the same moment on the other worker: one writer at a time.
    with path.open("a+", encoding="utf-8") as report:
        fcntl.flock(report, fcntl.LOCK_EX)
        report.seek(0)
        text = report.read()
        earlier = json.loads(text) if text.strip() and path.stat().st_mtime >= STARTED else []
        report.seek(0)
        report.truncate()
        report.write(json.dumps([*earlier, *entries], indent=2) + "\n")


def clean_state(stack: dict[str, Any], *, seed: int | None = None) -> None:
    """The project on its first commit, the raw data as loaded, prod built from both, the baseline accepted."""
    from airflow_selfheal.cli import main

    project, origin, initial = stack["project"], stack["origin"], stack["initial"]
    if git(project, "rev-parse", "HEAD") != initial or git(origin, "rev-parse", "main") != initial:
        git(project, "checkout", "--quiet", "main")
        git(project, "reset", "--quiet", "--hard", initial)
        git(project, "clean", "--quiet", "-fdx", "--exclude=target/")
        git(project, "push", "--quiet", "--force", "origin", "main")
        airflow_env.dbt_parse(project)
    with PROJECT.connect(stack["warehouse"]) as conn:
        PROJECT.load(conn, seed=seed)
    built = run_dbt(project, stack["root"] / "prod-build", "build", "--full-refresh", "--quiet")
    assert built.returncode == 0, built.stdout + built.stderr
    manifest = str(project / "target" / "manifest.json")
    snapshot = ["drift", "snapshot", PROJECT.baseline_name, "--conn-id", CONN_ID, "--manifest", manifest]
    assert main([*snapshot, "--accept", "--reason", "clean build"]) == 0
    stack["receiver"].deliveries.clear()


def prod(stack: dict[str, Any]) -> dict[str, str]:
    with PROJECT.connect(stack["warehouse"]) as conn:
        return database_fingerprint(conn, PROJECT.database)


def requested_repairs(before: set[str]) -> list[dict[str, Any]]:
    """The confs of repair runs the pipeline's failure callbacks requested since ``before``."""
    from airflow.models import DagRun

    return [dict(run.conf) for run in DagRun.find(dag_id=REPAIR_DAG_ID) if run.run_id not in before]


def repair_run_ids() -> set[str]:
    from airflow.models import DagRun

    return {run.run_id for run in DagRun.find(dag_id=REPAIR_DAG_ID)}


def repair(stack: dict[str, Any], conf: dict[str, Any]) -> dict[str, Any]:
    """Run one requested repair run to its end, approving when asked; what happened, with timings."""
    approver = Approver(stack["base_url"], REPAIR_DAG_ID, stack["warehouse"], PROJECT.database)
    started = time.monotonic()
    run = stack["bag"].dags[REPAIR_DAG_ID].test(run_conf=conf)
    elapsed = time.monotonic() - started
    outcome = approver.finish()
    assert "error" not in outcome or "never asked" in outcome["error"], outcome
    instances = run.get_task_instances()
    states = {ti.task_id: str(ti.state) for ti in instances}
    spans = {ti.task_id: (ti.start_date, ti.end_date) for ti in instances if ti.start_date and ti.end_date}
    paged = spans.get("page", (None, None))[1]
    triaged = spans.get("triage", (None, None))[0]
    to_page = (paged - triaged).total_seconds() if paged and triaged else None
    return {"run": run, "states": states, "approval": outcome, "seconds": elapsed, "triage_to_page": to_page}


def pages(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return [d.json() for d in stack["receiver"].deliveries if d.path.startswith("/v2/enqueue")]


def slack_texts(stack: dict[str, Any]) -> str:
    return json.dumps([d.json() for d in stack["receiver"].deliveries if d.path.startswith("/services")])


def bare_build_seconds(stack: dict[str, Any], select: str) -> float:
    """A bare ``dbt build --select <select>`` of the promoted project in prod, for the MTTR ratio."""
    started = time.monotonic()
    built = run_dbt(
        stack["project"], stack["root"] / "bare-build", "build", "--quiet", "--select", *select.split()
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return time.monotonic() - started


def check_scenario(stack: dict[str, Any], name: str) -> None:
    """Run scenario ``name`` from the clean state through the pipeline and its repair run; assert its outcome."""
    from airflow_selfheal.core.repair.selectors import promoted_selector
    from airflow_selfheal.records.audit import AuditLog

    assert name in PROJECT.scenarios, f"{PROJECT.key} has no scenario {name!r}: {sorted(PROJECT.scenarios)}"
    scenario = PROJECT.scenarios[name]
    started = time.monotonic()
    clean_state(stack)
    prepared = time.monotonic() - started
    head_before = git(stack["origin"], "rev-parse", "main")
    known = repair_run_ids()
    with PROJECT.connect(stack["warehouse"]) as conn:
        scenario.apply(conn)
    try:
        started = time.monotonic()
        pipeline = stack["bag"].dags[PIPELINE].test()
        pipeline_seconds = time.monotonic() - started
        instances = pipeline.get_task_instances()
        failed = sorted(ti.task_id for ti in instances if str(ti.state) == "failed")
        if scenario.expected_outcome == "no_incident":
            assert str(pipeline.state) == "success", failed
            assert requested_repairs(known) == []
            with PROJECT.connect(stack["warehouse"]) as conn:
                assert PROJECT.check_oracles(conn) == []
            stack["report"].append({"project": PROJECT.key, "scenario": name, "outcome": "no_incident"})
            return
        assert str(pipeline.state) == "failed", failed
        confs = requested_repairs(known)
        assert len(confs) == 1, (failed, confs)
        conf = confs[0]
        triage = conf["incident"].get("triage") or {}
        prod_before = prod(stack)
        result = repair(stack, conf)
        states = result["states"]
        entry: dict[str, Any] = {
            "project": PROJECT.key,
            "scenario": name,
            "failed_tasks": failed,
            "prepare_seconds": round(prepared, 1),
            "pipeline_seconds": round(pipeline_seconds, 1),
            "pipeline_tasks_run": sum(1 for ti in instances if ti.start_date is not None),
            "class": triage.get("failure_class"),
            "expected_class": scenario.expected_class,
            "expected_outcome": scenario.expected_outcome,
            "repair_seconds": round(result["seconds"], 1),
            "triage_to_page_seconds": result["triage_to_page"],
        }
        stack["report"].append(entry)
        summary = AuditLog(conf["incident"]["incident_id"]).summary()
        entry["outcome"] = summary.get("outcome")
        assert triage.get("failure_class") == scenario.expected_class, (triage, states)
        if scenario.expected_outcome == "repaired":
            assert str(result["run"].state) == "success", states
            for task_id in ("validate", "page", "approve", "promote", "rerun", "resolve"):
                assert states[task_id] == "success", states
            assert summary["outcome"] == "resolved", summary
            assert result["approval"]["prod_at_approval"] == prod_before  # nothing applied before approval
            assert git(stack["origin"], "rev-parse", "main") != head_before
            with PROJECT.connect(stack["warehouse"]) as conn:
                assert PROJECT.check_oracles(conn) == []  # the marts hold the clean values again
            validated = (
                result["run"].get_task_instance("validate").xcom_pull(task_ids="validate", key="result")
            )
            select = promoted_selector(validated, conf["incident"]["nodes"][0]["name"] + "+")
            bare = bare_build_seconds(stack, select)
            entry["bare_build_seconds"] = round(bare, 1)
            if result["triage_to_page"]:
                entry["ratio"] = round(result["triage_to_page"] / bare, 2)
        else:
            assert scenario.expected_outcome == "escalated"
            assert summary["outcome"] == "escalated", (summary, states)
            assert "promote" not in states or states["promote"] in ("skipped", "upstream_failed"), states
            assert git(stack["origin"], "rev-parse", "main") == head_before
            assert prod(stack) == prod_before  # nothing applied
            events = [event for event in pages(stack) if event.get("dedup_key") == conf["fingerprint"]]
            assert events, pages(stack)
            assert events[-1]["event_action"] == "trigger"
            assert "needs a person" in events[-1]["payload"]["summary"], events[-1]
            if scenario.expected_class == "source_freshness":
                # The page names the stale source (``source.<project>.<source>.<table>``).
                source = scenario.failing_nodes[0].split(".", 2)[2]
                assert source in json.dumps(events[-1]).lower(), events[-1]
    finally:
        with PROJECT.connect(stack["warehouse"]) as conn:
            scenario.reset(conn)
