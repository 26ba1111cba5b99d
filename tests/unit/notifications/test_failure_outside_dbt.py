"""A failure outside the dbt tasks (the drift check cannot reach the warehouse) still opens an incident.

The pipeline here is a real DAG: a ``SchemaDriftCheckOperator`` before a real cosmos ``DbtTaskGroup`` of the demo
project, rendered from the manifest a real ``dbt parse`` wrote. The callback gets that very operator as
``context["task"]``, as Airflow's task runner hands it, and the exception the Snowflake connector raises when the
warehouse's port is closed (its text recorded from a real run: see ``tests/integration/test_warehouse_outage.py``,
which reproduces it live).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.incident import Incident, compute_fingerprint
from airflow_selfheal.core.pages.failure import failure_page
from airflow_selfheal.core.pages.repair import escalation_facts
from airflow_selfheal.core.repair.decisions import triage_decision
from airflow_selfheal.core.repair.selectors import failed_selector
from airflow_selfheal.core.triage import classify
from airflow_selfheal.notifications.failure import SelfhealFailureNotifier
from airflow_selfheal.notifications.failure_evidence import downstream_dbt_nodes
from airflow_selfheal.records.incidents import IncidentStore
from dev import airflow_env
from dev.failure_contexts import FakeTaskInstance

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_selfheal.hooks.artifacts import ArtifactStore

PIPELINE = "shop_pipeline"
DRIFT_TASK = "check_source_drift"
CONN_ID = "outage_warehouse"
PASSWORD = "s3cr3t-Warehouse-Pa55"  # noqa: S105 - a test value, checked to be redacted
# What snowflake.connector raised from SelfhealSnowflakeHook.get_records("select 1") against a closed port on
# 127.0.0.1 (connector 4.8.0): an OperationalError, after urllib3 logged "Failed to establish a new connection:
# [Errno 111] Connection refused" for each attempt.
CONNECTOR_REFUSED = "250001: 250001: Could not connect to Snowflake backend after 2 attempt(s).Aborting"
URLLIB3_REFUSED = (
    "HTTPConnectionPool(host='127.0.0.1', port=37953): Max retries exceeded with url: "
    "/session/v1/login-request?request_id=bd386a11-cd61-4b1c-81fc-58ddae1b0f26 (Caused by "
    "NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=37953): Failed to establish a new connection: "
    '[Errno 111] Connection refused"))'
)
FAILED_AT = datetime(2026, 3, 1, 6, 0, 5, tzinfo=timezone.utc)


class OperationalError(Exception):
    """Stands for ``snowflake.connector.errors.OperationalError``; the notifier reads its name and text."""


@pytest.fixture(scope="module")
def pipeline(demo_manifest: Path) -> Any:
    """The shipped pipeline's shape: drift check, then the demo project's cosmos task group, then a snapshot."""
    from airflow.sdk import DAG
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, SourceRenderingBehavior

    from airflow_selfheal.hooks.profiles import SelfhealSnowflakeProfileMapping
    from airflow_selfheal.operators.drift import SchemaDriftCheckOperator, SchemaSnapshotOperator

    with DAG(PIPELINE, schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        check = SchemaDriftCheckOperator(
            task_id=DRIFT_TASK,
            baseline_name="shop_raw",
            snowflake_conn_id=CONN_ID,
            manifest_path=str(demo_manifest),
        )
        group = DbtTaskGroup(
            group_id="shop",
            project_config=ProjectConfig(
                dbt_project_path=airflow_env.DEMO_PROJECT,
                manifest_path=demo_manifest,
                project_name="selfheal_demo",
            ),
            profile_config=ProfileConfig(
                profile_name="selfheal_demo",
                target_name="prod",
                profile_mapping=SelfhealSnowflakeProfileMapping(conn_id=CONN_ID),
            ),
            execution_config=ExecutionConfig(
                execution_mode=ExecutionMode.LOCAL, invocation_mode=InvocationMode.DBT_RUNNER
            ),
            render_config=RenderConfig(
                load_method=LoadMode.DBT_MANIFEST,
                should_detach_multiple_parents_tests=True,
                source_rendering_behavior=SourceRenderingBehavior.WITH_TESTS_OR_FRESHNESS,
            ),
            operator_args={"install_deps": False},
        )
        snapshot = SchemaSnapshotOperator(
            task_id="snapshot_sources",
            baseline_name="shop_raw",
            snowflake_conn_id=CONN_ID,
            manifest_path=str(demo_manifest),
        )
        check >> group >> snapshot
    return dag


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    from airflow.models import Connection

    from airflow_selfheal.hooks.artifacts import ArtifactStore

    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    connection = Connection(conn_id=CONN_ID, conn_type="snowflake", login="u", password=PASSWORD)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection.as_json())
    return ArtifactStore()


def outage_context(
    dag: Any,
    *,
    task_id: str = DRIFT_TASK,
    run_id: str = "manual__2026-03-01T06:00:00+00:00",
    **overrides: Any,
) -> dict[str, Any]:
    ti = FakeTaskInstance(dag_id=dag.dag_id, run_id=run_id, task_id=task_id, end_date=FAILED_AT)
    values: dict[str, Any] = {
        "ti": ti,
        "task_instance": ti,
        "run_id": run_id,
        "dag": dag,
        "task": dag.get_task(task_id),
        "exception": OperationalError(CONNECTOR_REFUSED),
    }
    values.update(overrides)
    return values


def manifest_ids(manifest: Path, resource_types: tuple[str, ...]) -> set[str]:
    data = json.loads(manifest.read_text())
    return {
        unique_id
        for unique_id, node in data["nodes"].items()
        if node["resource_type"] in resource_types and node["package_name"] == "selfheal_demo"
    }


class TestBlockedNodes:
    def test_every_dbt_node_of_the_group_is_blocked_by_the_drift_check(
        self, pipeline: Any, demo_manifest: Path
    ) -> None:
        blocked = {config["unique_id"] for config in downstream_dbt_nodes(pipeline.get_task(DRIFT_TASK))}
        # Every model, seed and snapshot has a task under the group, and the group is downstream of the check.
        assert manifest_ids(demo_manifest, ("model", "seed", "snapshot")) <= blocked
        assert all(
            unique_id.split(".")[0] in ("model", "seed", "snapshot", "test", "source")
            for unique_id in blocked
        )

    def test_a_task_after_the_group_blocks_no_dbt_node(self, pipeline: Any) -> None:
        assert downstream_dbt_nodes(pipeline.get_task("snapshot_sources")) == []

    def test_a_dbt_task_blocks_only_its_descendants(self, pipeline: Any) -> None:
        task = next(t for t in pipeline.tasks if t.task_id.endswith("stg_orders.run"))
        blocked = {config["unique_id"] for config in downstream_dbt_nodes(task)}
        assert "model.selfheal_demo.fct_orders" in blocked
        assert "model.selfheal_demo.stg_customers" not in blocked
        assert "model.selfheal_demo.stg_orders" in blocked  # its own test task carries its node

    def test_no_task_no_nodes(self) -> None:
        assert downstream_dbt_nodes(None) == []


class TestIncidentOfTheDriftCheck:
    def test_incident_names_the_task_the_error_and_the_blocked_nodes(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        outcome = SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False).handle(
            outage_context(pipeline)
        )
        incident = outcome.incident
        assert incident.pipeline == PIPELINE
        assert incident.task_id == DRIFT_TASK
        assert incident.nodes == ()
        assert incident.error == f"OperationalError: {CONNECTOR_REFUSED}"
        by_id = {node.unique_id: node for node in incident.blocked_nodes}
        assert manifest_ids(demo_manifest, ("model",)) <= set(by_id)
        assert by_id["model.selfheal_demo.stg_orders"].name == "stg_orders"
        assert by_id["model.selfheal_demo.stg_orders"].original_file_path == "models/staging/stg_orders.sql"
        sources = [node for node in incident.blocked_nodes if node.resource_type == "source"]
        assert all(
            node.name == node.unique_id.rsplit(".", 1)[1] for node in sources
        )  # the table, not the source
        assert (incident.triage or {})["failure_class"] == "transient"
        assert IncidentStore().get(incident.incident_id) == incident  # stored, blocked nodes included
        page = failure_page(incident)
        assert page.title.endswith(f"task {DRIFT_TASK} (transient)")
        assert "Blocked dbt nodes: " in page.sections[0][1]

    def test_connection_password_in_the_error_is_redacted(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        leaked = OperationalError(f"{CONNECTOR_REFUSED} (login with password {PASSWORD})")
        incident = (
            SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False)
            .handle(outage_context(pipeline, exception=leaked))
            .incident
        )
        assert PASSWORD not in json.dumps(incident.to_dict())
        assert CONNECTOR_REFUSED in incident.error

    def test_same_outage_in_another_run_is_the_same_incident(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        notifier = SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False)
        first = notifier.handle(outage_context(pipeline)).incident
        again = notifier.handle(
            outage_context(pipeline, run_id="scheduled__2026-03-01T07:00:00+00:00")
        ).incident
        assert again.fingerprint == first.fingerprint
        other_error = notifier.handle(
            outage_context(pipeline, exception=RuntimeError("baseline shop_raw is unreadable"))
        ).incident
        other_task = notifier.handle(outage_context(pipeline, task_id="snapshot_sources")).incident
        assert len({first.fingerprint, other_error.fingerprint, other_task.fingerprint}) == 3


class TestFingerprint:
    def test_a_dbt_failure_keeps_its_fingerprint(self) -> None:
        # Incidents recorded before a task could be part of the fingerprint still deduplicate.
        assert compute_fingerprint("p", ["model.a"], "sig") == compute_fingerprint(
            "p", ["model.a"], "sig", failed_task=None
        )

    def test_the_failed_task_matters_outside_dbt(self) -> None:
        assert compute_fingerprint("p", [], "sig", failed_task="a") != compute_fingerprint(
            "p", [], "sig", failed_task="b"
        )
        assert compute_fingerprint("p", [], "sig", failed_task="a") != compute_fingerprint("p", [], "sig")


class TestRecords:
    def test_a_record_of_0_1_0_loads_without_blocked_nodes(self) -> None:
        fingerprint = compute_fingerprint(PIPELINE, ["model.selfheal_demo.stg_orders"], "sig")
        old = {
            "incident_id": f"inc-{fingerprint[:16]}",
            "fingerprint": fingerprint,
            "pipeline": PIPELINE,
            "run_id": "manual__1",
            "task_id": "shop.stg_orders.run",
            "map_index": -1,
            "try_number": 1,
            "nodes": [
                {
                    "unique_id": "model.selfheal_demo.stg_orders",
                    "resource_type": "model",
                    "name": "stg_orders",
                    "original_file_path": "models/staging/stg_orders.sql",
                }
            ],
            "error": "boom",
            "error_signature": "sig",
            "compiled_sql": None,
            "run_results_excerpt": [],
            "failed_at": "2026-03-01T06:00:05+00:00",
            "git_sha": None,
            "environment": "prod",
        }
        incident = Incident.from_dict(old)
        assert incident.blocked_nodes == ()
        assert incident.to_dict()["blocked_nodes"] == []
        assert failed_selector(incident.to_dict()) == "stg_orders+"

    def test_blocked_nodes_round_trip_and_a_bad_one_is_named(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        incident = (
            SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False)
            .handle(outage_context(pipeline))
            .incident
        )
        data = json.loads(json.dumps(incident.to_dict()))
        assert Incident.from_dict(data) == incident
        data["blocked_nodes"][1] = {"unique_id": "model.x.y"}
        with pytest.raises(ValueError, match=r"blocked_nodes\[1\].*resource_type"):
            Incident.from_dict(data)


class TestRepairOfABlockedPipeline:
    @pytest.mark.parametrize(
        "text",
        [
            pytest.param(f"OperationalError: {CONNECTOR_REFUSED}", id="connector-backend"),
            pytest.param(URLLIB3_REFUSED, id="urllib3-refused"),
            pytest.param(
                "250001 (08001): Failed to connect to DB: 127.0.0.1:40123. Connection refused",
                id="connector-db",
            ),
            pytest.param("socket.gaierror: [Errno -2] Name or service not known", id="dns"),
            pytest.param("ConnectionResetError: [Errno 104] Connection reset by peer", id="reset"),
            pytest.param("OSError: [Errno 101] Network is unreachable", id="unreachable"),
            pytest.param("OSError: [Errno 113] No route to host", id="no-route"),
        ],
    )
    def test_warehouse_unreachable_is_transient(self, text: str) -> None:
        assert classify(text).failure_class.value == "transient"

    def test_transient_outage_retries_exactly_the_blocked_nodes(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        incident = (
            SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False)
            .handle(outage_context(pipeline))
            .incident.to_dict()
        )
        decision = triage_decision(incident)
        assert decision["branch"] == "retry"
        selected = decision["select"].split()
        assert "stg_orders" in selected
        assert "fct_orders" in selected
        assert not any(item.endswith("+") for item in selected)  # the blocked nodes, nothing more
        assert len(selected) == len(incident["blocked_nodes"])
        sources = [item for item in selected if item.startswith("source:")]
        assert sources
        assert all(item.count(".") == 1 for item in sources)  # source:<source>.<table>

    def test_other_failures_of_the_drift_check_escalate_naming_the_task(
        self, pipeline: Any, demo_manifest: Path, artifacts: ArtifactStore
    ) -> None:
        # A missing column classifies as repairable, but there is no dbt node to repair.
        error = RuntimeError('002043 (02000): Binder Error: Referenced column "X" not found in FROM clause!')
        incident = (
            SelfhealFailureNotifier(manifest_path=str(demo_manifest), dispatch=False)
            .handle(outage_context(pipeline, exception=error))
            .incident.to_dict()
        )
        decision = triage_decision(incident)
        assert (decision["branch"], decision["action"]) == ("escalate", "escalate")
        assert decision["triage"]["action"] == "repair"  # what triage recommended is kept
        facts = dict(escalation_facts(incident))
        assert facts["Failed task"] == DRIFT_TASK
        assert "model.selfheal_demo.stg_orders" in facts["Blocked dbt nodes"]

    def test_nothing_blocked_nothing_to_retry(self) -> None:
        from tests.support.incidents import make_incident

        incident = make_incident(error=CONNECTOR_REFUSED, nodes=[], triage=None)
        assert triage_decision(incident)["branch"] == "escalate"
