"""Any crash of the repair run from the clone onwards pages on-call, names the step and its error, and cleans up.

Run for real with ``dag.test()`` on the embedded warehouse; PagerDuty and Slack are the local HTTP receiver. Two
real failures: a clone with a genuine gap (a view reading a schema outside the clone, which the completeness
check must refuse), and a validation that cannot start (its sandbox folder cannot be created).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev import airflow_env
from dev.receivers import Receiver, http_receiver
from tests.support.incidents import make_incident, rename_triage

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse
    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration]

BUNDLE = "selfheal-repair-failures"
GAP_SCHEMA = "SELFHEAL_GAPS"
DAG_FILE = f"""
import dataclasses
import os

from airflow_selfheal.dags.repair import build_repair_dag
from airflow_selfheal.repair import RepairConfig

config = RepairConfig(
    project_dir=os.environ["SELFHEAL_DBT_PROJECT_DIR"],
    manifest_path=os.environ["SELFHEAL_DBT_MANIFEST"],
    snowflake_conn_id="selfheal_warehouse",
    prod_database="DEMO",
    pagerduty_conn_id="pd_failures",
    slack_conn_id="slack_failures",
    sandbox_root=os.environ["FAILURES_SANDBOXES"],
)
# The gap schema's view reads RAW, which this clone leaves out: a real gap.
gap = build_repair_dag("selfheal_repair_gap", config=dataclasses.replace(config, clone_schemas=["{GAP_SCHEMA}"]))
# A regular file where the sandboxes should go: validation cannot create its sandbox.
broken = build_repair_dag(
    "selfheal_repair_broken_validation",
    config=dataclasses.replace(
        config, clone_schemas=["RAW"], sandbox_root=os.path.join(os.environ["FAILURES_NOT_A_DIR"], "sandboxes")
    ),
)
"""


@pytest.fixture(scope="module")
def bag(
    module_dag_bundles: DagBundles, demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("repair-failures")
    folder = root / "dags"
    folder.mkdir()
    (folder / "repair_failures.py").write_text(DAG_FILE)
    not_a_dir = root / "not-a-dir"
    not_a_dir.write_text("a file, not a folder")
    patch = pytest.MonkeyPatch()
    patch.setenv("SELFHEAL_DBT_PROJECT_DIR", str(airflow_env.DEMO_PROJECT))
    patch.setenv("SELFHEAL_DBT_MANIFEST", str(demo_manifest))
    patch.setenv("FAILURES_SANDBOXES", str(root / "sandboxes"))
    patch.setenv("FAILURES_NOT_A_DIR", str(not_a_dir))
    try:
        yield module_dag_bundles.sync(BUNDLE, folder)
    finally:
        patch.undo()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Receiver]:
    from airflow.models.connection import Connection

    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    with http_receiver() as rec:
        pagerduty = Connection(
            conn_id="pd_failures", conn_type="pagerduty_events", host=rec.url, password="k" * 32
        )
        slack = Connection(
            conn_id="slack_failures", conn_type="slackwebhook", password=f"{rec.url}/services/T/B/C"
        )
        monkeypatch.setenv("AIRFLOW_CONN_PD_FAILURES", pagerduty.as_json())
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_FAILURES", slack.as_json())
        yield rec


def run_repair(bag: Any, dag_id: str, conf: dict[str, Any]) -> tuple[str, dict[str, str]]:
    run = bag.dags[dag_id].test(run_conf=conf)
    return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def escalation(receiver: Receiver, fingerprint: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The one PagerDuty trigger sent for the fingerprint, and the Slack messages."""
    events = [d.json() for d in receiver.deliveries if d.path.startswith("/v2/enqueue")]
    (event,) = [e for e in events if e["event_action"] == "trigger"]
    assert event["dedup_key"] == fingerprint
    slack = [d.json() for d in receiver.deliveries if d.path.startswith("/services/")]
    return event, slack


def test_a_clone_with_a_real_gap_pages_naming_the_clone_step(
    warehouse: Warehouse, bag: Any, receiver: Receiver
) -> None:
    from airflow_selfheal.records.audit import AuditLog
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
        conn.cursor().execute(f"create schema if not exists DEMO.{GAP_SCHEMA}")
        conn.cursor().execute(
            f"create or replace view DEMO.{GAP_SCHEMA}.PLACED as "
            "select ORDER_ID, datediff('day', ORDER_DATE, current_date) as AGE from DEMO.RAW.ORDERS"
        )
    incident = make_incident(triage=None)
    state, states = run_repair(bag, "selfheal_repair_gap", {"incident": incident})
    assert states["clone"] == "failed", states
    assert states["propose"] == "upstream_failed", states
    assert states["escalate_failure"] == "success", states
    assert states["cleanup"] == "success", states
    assert state == "failed"  # the run still shows that it did not repair anything

    event, slack = escalation(receiver, incident["fingerprint"])
    assert "repair step clone failed" in event["payload"]["summary"]
    details = event["payload"]["custom_details"]
    assert details["failed_step"] == "clone"
    assert "cloning prod" in details["reason"]
    assert f"{GAP_SCHEMA}.PLACED" in details["reason"]
    assert "is not complete" in details["reason"]
    assert any("repair step clone failed" in json.dumps(message) for message in slack)

    trail = AuditLog(incident["incident_id"])
    entries = trail.entries()
    clone = [e for e in entries if e["step"] == "clone"]
    assert clone[-1]["status"] == "failed"
    assert "is not complete" in clone[-1]["details"]["error"]
    paged = [e for e in entries if e["step"] == "escalate"]
    assert paged[-1]["details"]["failed_step"] == "clone"
    summary = trail.summary()
    assert summary["outcome"] == "step_failed"
    with warehouse.connect() as conn:
        leftovers = conn.cursor().execute("show databases like '%SELFHEAL_%'").fetchall()
        for row in leftovers:  # the refused clone was dropped (emptied on the stand-in)
            name = row[1]
            tables = (
                conn.cursor()
                .execute(
                    f'select count(*) from "{name}".INFORMATION_SCHEMA.TABLES '
                    "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
                )
                .fetchone()
            )
            if incident["incident_id"].upper().replace("-", "_") in name:
                assert tables[0] == 0, name


def test_a_validation_that_cannot_start_pages_naming_the_validate_step(
    warehouse: Warehouse, bag: Any, receiver: Receiver
) -> None:
    from airflow_selfheal.records.audit import AuditLog
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    incident = make_incident(triage=rename_triage())
    state, states = run_repair(bag, "selfheal_repair_broken_validation", {"incident": incident})
    assert states["clone"] == states["propose"] == "success", states
    assert states["validate"] == "failed", states
    assert states["page"] == states["approve"] == "upstream_failed", states
    assert states["escalate_failure"] == "success", states
    assert states["cleanup"] == "success", states
    assert state == "failed"

    event, _ = escalation(receiver, incident["fingerprint"])
    details = event["payload"]["custom_details"]
    assert details["failed_step"] == "validate"
    assert "validating the fix in the clone" in details["reason"]
    assert "not-a-dir" in details["reason"]  # the error names the path it could not create
    summary = AuditLog(incident["incident_id"]).summary()
    assert summary["outcome"] == "step_failed"
    cleanup = [e for e in AuditLog(incident["incident_id"]).entries() if e["step"] == "outcome"]
    assert cleanup[-1]["details"]["failed_step"] == "validate"
    assert cleanup[-1]["details"]["clone_dropped"] in ("dropped", "emptied")
