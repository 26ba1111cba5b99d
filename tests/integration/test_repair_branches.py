"""The repair DAG's escalation branches, run for real with ``dag.test()`` on the embedded warehouse.

An unknown failure is escalated straight after triage; a missing column with no upstream change to explain it
(no drift root cause, so no rule can write a fix) is escalated after propose. Neither reaches validation or approval, both page a
person through the local PagerDuty receiver, and cleanup still runs and records the outcome.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev import airflow_env
from dev.receivers import Receiver, http_receiver
from tests.support.demo import dbt_build_prod
from tests.support.incidents import make_incident

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse
    from tests.support.bundles import DagBundles

pytestmark = [pytest.mark.integration]


BUNDLE = "selfheal-repair-branches"
DAG_FILE = """
import dataclasses
import os

from airflow_selfheal.dags.repair import build_repair_dag
from airflow_selfheal.repair import RepairConfig

config = RepairConfig(
    project_dir=os.environ["SELFHEAL_DBT_PROJECT_DIR"],
    manifest_path=os.environ["SELFHEAL_DBT_MANIFEST"],
    snowflake_conn_id="selfheal_warehouse",
    prod_database="DEMO",
    pagerduty_conn_id="pd_branches",
    sandbox_root=os.environ["BRANCHES_SANDBOXES"],
)
unknown = build_repair_dag("selfheal_repair_unknown", config=config)
# Only the raw schema: prod's models may be in any state other tests left them in, and propose reads none of them.
unfixable = build_repair_dag(
    "selfheal_repair_unfixable", config=dataclasses.replace(config, clone_schemas=["RAW"])
)
"""


@pytest.fixture(scope="module")
def bag(
    module_dag_bundles: DagBundles, demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Both DAGs in a synced bundle (``dag.test()`` runs only serialized DAGs), configured like a deployment."""
    root = tmp_path_factory.mktemp("repair-branches")
    folder = root / "dags"
    folder.mkdir()
    (folder / "repair_branches.py").write_text(DAG_FILE)
    patch = pytest.MonkeyPatch()
    patch.setenv("SELFHEAL_DBT_PROJECT_DIR", str(airflow_env.DEMO_PROJECT))
    patch.setenv("SELFHEAL_DBT_MANIFEST", str(demo_manifest))
    patch.setenv("BRANCHES_SANDBOXES", str(root / "sandboxes"))
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
            conn_id="pd_branches", conn_type="pagerduty_events", host=rec.url, password="k" * 32
        )
        monkeypatch.setenv("AIRFLOW_CONN_PD_BRANCHES", pagerduty.as_json())
        yield rec


def run_repair(bag: Any, dag_id: str, conf: dict[str, Any]) -> dict[str, str]:
    run = bag.dags[dag_id].test(run_conf=conf)
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def test_unknown_failure_is_escalated_after_triage(
    warehouse: Warehouse, bag: Any, receiver: Receiver
) -> None:
    from airflow_selfheal.records.audit import AuditLog

    incident = make_incident(error="The flux capacitor reported an unexpected condition.", triage=None)
    states = run_repair(bag, "selfheal_repair_unknown", {"incident": incident})
    assert states["escalate"] == "success", states
    assert states["clone"] == states["retry"] == "skipped", states
    assert states["approve"] == "skipped", states
    assert states["cleanup"] == "success", states
    (event,) = [d.json() for d in receiver.deliveries if d.path.startswith("/v2/enqueue")]
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == incident["fingerprint"]
    assert "needs a person" in event["payload"]["summary"]
    assert "unknown" in event["payload"]["custom_details"]["reason"]
    assert AuditLog(incident["incident_id"]).summary()["outcome"] == "escalated"


def test_failure_no_rule_can_fix_is_escalated_after_propose(
    warehouse: Warehouse, bag: Any, receiver: Receiver
) -> None:
    from airflow_selfheal.core.incident import DbtNodeRef
    from airflow_selfheal.records.audit import AuditLog
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    incident = make_incident(
        error=(
            "Database Error in model fct_orders (models/marts/fct_orders.sql)\n"
            '  002043 (42000): Binder Error: Referenced column "ORDER_TOTAL" not found in FROM clause!'
        ),
        triage=None,
        nodes=[
            DbtNodeRef(
                unique_id="model.selfheal_demo.fct_orders",
                resource_type="model",
                name="fct_orders",
                original_file_path="models/marts/fct_orders.sql",
            ).to_dict()
        ],
    )
    states = run_repair(bag, "selfheal_repair_unfixable", {"incident": incident})
    assert states["clone"] == states["propose"] == "success", states
    clone = next(e for e in AuditLog(incident["incident_id"]).entries() if e["step"] == "clone")
    assert clone["details"]["clone"].startswith("DEMO__SELFHEAL_")
    assert states["escalate_unfixable"] == "success", states
    assert states["validate"] == states["approve"] == "skipped", states
    assert states["cleanup"] == "success", states
    (event,) = [d.json() for d in receiver.deliveries if d.path.startswith("/v2/enqueue")]
    assert "needs a person" in event["payload"]["summary"]
    assert event["payload"]["custom_details"]["reason"]  # the rules' own words: why no fix was proposed
    summary = AuditLog(incident["incident_id"]).summary()
    assert summary["outcome"] == "escalated"


def test_transient_failure_is_retried_in_prod_without_a_code_change(
    warehouse: Warehouse, bag: Any, receiver: Receiver, tmp_path: Path
) -> None:
    from airflow_selfheal.records.audit import AuditLog
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    dbt_build_prod(warehouse, tmp_path)  # prod as a deploy left it: every model built
    incident = make_incident(
        error="000630 (57014): Statement reached its statement or warehouse timeout of 300 second(s) and was canceled.",
        triage=None,
    )
    states = run_repair(bag, "selfheal_repair_unknown", {"incident": incident})
    assert states["retry"] == "success", states
    assert states["clone"] == states["escalate"] == "skipped", states
    assert states["cleanup"] == "success", states
    assert receiver.deliveries == []  # a successful retry pages nobody
    summary = AuditLog(incident["incident_id"]).summary()
    assert summary["outcome"] == "retried"
    retry = next(step for step in summary["steps"] if step["step"] == "retry")
    assert retry["status"] == "succeeded"
    assert retry["duration_seconds"] > 0  # the re-run's own time, from the task's start
    with warehouse.connect() as conn:
        rows = conn.cursor().execute("select count(*) from DEMO.ANALYTICS.STG_ORDERS").fetchone()
    assert rows[0] > 0  # the failed selector (stg_orders+) really ran in prod
