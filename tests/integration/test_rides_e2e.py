"""The second dev project (rides: bike share, CTE style, vars, freshness, an incremental mart) through the real loop.

``SELFHEAL_E2E_PROJECT=shop`` runs the demo shop's scenarios the same way (every scenario of its registry), and
``SELFHEAL_E2E_SCENARIOS=a,b`` or ``=all`` chooses the scenarios; ``make test`` runs the rides list below.

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
PagerDuty are a local HTTP receiver. Set ``SELFHEAL_E2E_REPORT=path.json`` to keep each scenario's timings.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev import airflow_env
from dev.apiserver import running_api_server
from dev.e2e import Approver, bundle_config, database_fingerprint, dbt_command, readme_block, sync_bundle
from dev.project_repo import git, git_copy
from dev.projects import PROJECTS
from dev.receivers import http_receiver
from dev.warehouse import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# `make test` runs the rides project; SELFHEAL_E2E_PROJECT=shop runs the same scenarios on the demo shop.
PROJECT = PROJECTS[os.environ.get("SELFHEAL_E2E_PROJECT", "rides")]
PIPELINE = f"{PROJECT.key}_e2e_pipeline"
REPAIR_DAG_ID = f"selfheal_repair_{PROJECT.key}_e2e"
CONN_ID = f"{PROJECT.key}_warehouse"
BUNDLE = f"selfheal-{PROJECT.key}-e2e"
REPORT: list[dict[str, Any]] = []
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


def scenario_names() -> list[str]:
    chosen = os.environ.get("SELFHEAL_E2E_SCENARIOS", "")
    if chosen == "all" or (not chosen and PROJECT.key != "rides"):
        return list(PROJECT.scenarios)
    return [name.strip() for name in chosen.split(",") if name.strip()] or list(DEFAULT_SCENARIOS)


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


@pytest.fixture(scope="module")
def stack(
    warehouse: Warehouse, airflow_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The project in git, both README DAGs in a synced bundle, on-call receivers and an api-server."""
    from airflow.models.connection import Connection

    root = tmp_path_factory.mktemp(f"{PROJECT.key}-e2e")
    project, origin = git_copy(root, PROJECT.project_dir, folder=PROJECT.git_dir_name)
    folder = root / "dags"
    folder.mkdir()
    (folder / "pipeline.py").write_text(
        readme_block(
            "pipeline-dag",
            {
                'Path("/opt/dbt/rides")': f"Path({str(project)!r})",
                'PROJECT_NAME = "rides"': f"PROJECT_NAME = {PROJECT.dbt_project_name!r}",
                'dag_id="rides_pipeline"': f"dag_id={PIPELINE!r}",
                'CONN_ID = "snowflake_default"': f"CONN_ID = {CONN_ID!r}",
                'BASELINE = "rides_sources"': f"BASELINE = {PROJECT.baseline_name!r}",
            },
        )
    )
    (folder / "repair.py").write_text(
        readme_block(
            "repair-dag",
            {
                '"selfheal_repair",': f"{REPAIR_DAG_ID!r},",
                'project_dir="/opt/dbt/rides"': f"project_dir={str(project)!r}",
                'snowflake_conn_id="snowflake_default"': f"snowflake_conn_id={CONN_ID!r}",
                'prod_database="RIDES"': f"prod_database={PROJECT.database!r}",
                "slack_conn_id=None": 'slack_conn_id="slack_oncall"',
                "pagerduty_conn_id=None": 'pagerduty_conn_id="pd_oncall"',
                'baseline_name="rides_sources"': f"baseline_name={PROJECT.baseline_name!r}",
            },
        )
    )
    patch = pytest.MonkeyPatch()
    with http_receiver() as receiver:
        slack = Connection(
            conn_id="slack_oncall", conn_type="slackwebhook", password=f"{receiver.url}/services/T/B/C"
        )
        pagerduty = Connection(
            conn_id="pd_oncall", conn_type="pagerduty_events", host=receiver.url, password="k" * 32
        )
        environ = {
            f"AIRFLOW_CONN_{CONN_ID.upper()}": conn_json(warehouse),
            "AIRFLOW_CONN_SLACK_ONCALL": slack.as_json(),
            "AIRFLOW_CONN_PD_ONCALL": pagerduty.as_json(),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": bundle_config(BUNDLE, folder),
            "AIRFLOW__SELFHEAL__REPAIR_DAG_ID": REPAIR_DAG_ID,
            "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": str(root / "artifacts"),
            "AIRFLOW__SELFHEAL__ENVIRONMENT": "ci",
        }
        for key, value in environ.items():
            patch.setenv(key, value)
        patch.chdir(root)
        try:
            airflow_env.dbt_parse(project)
            bag = sync_bundle(BUNDLE, folder)
            with running_api_server(root / "api-server.log") as base_url:
                patch.setenv("AIRFLOW__API__BASE_URL", base_url)
                yield {
                    "root": root,
                    "project": project,
                    "origin": origin,
                    "initial": git(origin, "rev-parse", "main"),
                    "bag": bag,
                    "base_url": base_url,
                    "warehouse": warehouse,
                    "receiver": receiver,
                }
        finally:
            patch.undo()
            if os.environ.get("SELFHEAL_E2E_REPORT"):
                Path(os.environ["SELFHEAL_E2E_REPORT"]).write_text(json.dumps(REPORT, indent=2) + "\n")


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


@pytest.mark.parametrize("name", scenario_names())
def test_scenario_ends_as_expected(stack: dict[str, Any], name: str) -> None:
    from airflow_selfheal.records.audit import AuditLog
    from airflow_selfheal.repair import promoted_selector

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
            REPORT.append({"project": PROJECT.key, "scenario": name, "outcome": "no_incident"})
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
        REPORT.append(entry)
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


def test_warehouse_outage_before_dbt_is_retried(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drift check cannot reach the warehouse, so no dbt task runs; the retry rebuilds prod once it answers.

    Both finance marts are dropped first, as if the run that builds them never happened, so only a retry that
    really ran dbt in prod can bring them back.
    """
    from airflow_selfheal.records.audit import AuditLog

    clean_state(stack)
    # The run that should have built the finance marts never happened: they are missing until a build runs.
    finance = [f"{PROJECT.marts}.FCT_DAILY_REVENUE", f"{PROJECT.marts}.FCT_REVENUE_BY_PLAN"]
    with PROJECT.connect(stack["warehouse"]) as conn:
        for table in finance:
            conn.cursor().execute(f"drop table {table}")
    known = repair_run_ids()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(stack["warehouse"], port=free_port()))
    pipeline = stack["bag"].dags[PIPELINE].test()
    states = {ti.task_id: str(ti.state) for ti in pipeline.get_task_instances()}
    assert states["check_source_drift"] == "failed", states
    confs = requested_repairs(known)
    assert len(confs) == 1, confs
    triage = confs[0]["incident"].get("triage") or {}
    assert triage.get("failure_class") == "transient", triage
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(stack["warehouse"]))
    result = repair(stack, confs[0])
    assert result["states"]["retry"] == "success", result["states"]
    assert result["states"]["clone"] == "skipped", result["states"]
    assert AuditLog(confs[0]["incident"]["incident_id"]).summary()["outcome"] == "retried"
    with PROJECT.connect(stack["warehouse"]) as conn:
        for table in finance:
            assert conn.cursor().execute(f"select count(*) from {table}").fetchone()[0] > 0, table
        assert PROJECT.check_oracles(conn) == []  # the re-run rebuilt the marts from the same raw data
    REPORT.append(
        {
            "project": PROJECT.key,
            "scenario": "warehouse_outage",
            "class": "transient",
            "expected_outcome": "retried",
            "outcome": "retried",
            "repair_seconds": round(result["seconds"], 1),
        }
    )
