"""The failure notifier: incident, triage, storage, repair conf and the page, with hand-built task contexts.

The contexts and dbt artifacts are those of ``dev/failure_contexts.py``: what Airflow 3 and cosmos hand a callback,
with a stand-in task instance (its real ``xcom_pull`` needs a task supervisor);
``tests/integration/test_failure_capture.py`` runs the real one.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.models import Connection

from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
from airflow_selfheal.core.pages.failure import failure_page
from airflow_selfheal.core.redaction import REDACTED
from airflow_selfheal.hooks.airflow_api import MAX_CONF_BYTES
from airflow_selfheal.notifications.failure import (
    SelfhealFailureNotifier,
    repair_conf,
    send_selfheal_failure_notification,
)
from airflow_selfheal.records.incidents import IncidentStore, occurrence_name
from airflow_selfheal.repair.triage import load_incident
from dev.failure_contexts import (
    CHILD,
    COSMOS_ERROR,
    DAG_ID,
    FAILED_AT,
    FAILED_TEST_RESULT,
    NOT_NULL,
    REAL_RUN_RESULTS,
    RUN_ID,
    SOURCE,
    STG_ORDERS,
    STG_ORDERS_SQL,
    TASK_ID,
    CosmosDbtRunError,
    FakeTaskInstance,
    context,
    drift_report,
    prefix,
    use_artifacts_root,
    use_s3_artifacts_root,
    write_project,
)
from dev.receivers import Receiver, http_receiver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_selfheal.hooks.artifacts import ArtifactStore

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def artifacts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ArtifactStore:
    """
    The configured artifacts root: a temporary folder, or a fresh prefix of the loopback bucket for a test
    marked with :data:`EACH_ROOT`.
    """
    if getattr(request, "param", "file") == "s3":
        return use_s3_artifacts_root(request.getfixturevalue("s3"), monkeypatch)
    return use_artifacts_root(tmp_path, monkeypatch)


#: Runs a test on a folder root and again on an ``s3://`` root (moto on loopback).
EACH_ROOT = pytest.mark.parametrize("artifacts", ["file", "s3"], indirect=True)


@pytest.fixture
def project(tmp_path: Path, artifacts: ArtifactStore) -> Path:
    return write_project(tmp_path / "tmp_project")


class TestSelfhealFailureNotifier:
    def test_full_context_builds_a_classified_incident(
        self, project: Path, artifacts: ArtifactStore, capsys: pytest.CaptureFixture[str]
    ) -> None:
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        notifier = SelfhealFailureNotifier(manifest_path=project / "target" / "manifest.json", dispatch=False)
        # The task runner loads Airflow's plugins at startup (listeners), before any callback; do the same so
        # the measured time is the callback's own. Without it the first artifact write pays ~1.5s for them.
        from airflow.sdk.listener import get_listener_manager

        get_listener_manager()

        outcome = notifier.handle(ctx)

        incident = outcome.incident
        with capsys.disabled():
            print(
                f"\n[measure] failure callback, first call, excluding network: {outcome.local_seconds:.3f}s"
            )
        assert (incident.pipeline, incident.run_id, incident.task_id, incident.try_number) == (
            DAG_ID,
            RUN_ID,
            TASK_ID,
            1,
        )
        (node,) = incident.nodes
        assert (node.unique_id, node.resource_type, node.original_file_path) == (
            STG_ORDERS,
            "model",
            "models/staging/stg_orders.sql",
        )
        assert (node.upstream, node.downstream) == ((SOURCE,), (CHILD, NOT_NULL))
        assert incident.compiled_sql == STG_ORDERS_SQL
        assert [r["status"] for r in incident.run_results_excerpt] == ["error"]
        assert incident.error.startswith(
            "CosmosDbtRunError: dbt invocation completed with errors: stg_orders:"
        )
        assert incident.failed_at == FAILED_AT.isoformat()
        assert incident.environment == "dev"
        assert incident.git_sha is None  # the temp project is not a git work tree
        assert incident.missing == ()
        triage = incident.triage or {}
        assert (triage["failure_class"], triage["action"]) == ("missing_column", "repair")
        assert triage["root_cause"]["kind"] == "upstream_rename"
        assert ctx["ti"].pulls == [{"task_ids": "check_source_drift", "dag_id": DAG_ID, "run_id": RUN_ID}]

        assert outcome.new_incident is True
        stored = IncidentStore().get(incident.incident_id)
        assert stored == incident
        (occurrence,) = IncidentStore().occurrences(incident.incident_id)
        assert (occurrence["run_id"], occurrence["task_id"], occurrence["try_number"]) == (RUN_ID, TASK_ID, 1)

        again = notifier.handle(ctx)
        with capsys.disabled():
            print(f"[measure] failure callback, warm call, excluding network: {again.local_seconds:.3f}s")
        assert again.incident.incident_id == incident.incident_id
        assert again.new_incident is False

    @EACH_ROOT
    def test_one_try_is_recorded_once_from_its_captured_evidence(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        notifier = SelfhealFailureNotifier(dispatch=False)

        first = notifier.handle(ctx)
        # The callback run again for the same try: same incident, same occurrence, nothing rewritten.
        again = notifier.handle(ctx)

        incident = first.incident
        assert incident.missing == ()  # run results, compiled SQL and manifest all read from the store
        assert incident.compiled_sql == STG_ORDERS_SQL
        assert (incident.nodes[0].downstream, (incident.triage or {})["failure_class"]) == (
            (CHILD, NOT_NULL),
            "missing_column",
        )
        assert (first.new_incident, again.new_incident, first.errors, again.errors) == (True, False, [], [])
        relative = f"incidents/{incident.incident_id}/incident.json"
        assert json.loads(artifacts.read_text(relative))["schema_version"] == 1
        assert IncidentStore().get(incident.incident_id) == incident
        (occurrence,) = IncidentStore().occurrences(incident.incident_id)
        assert (occurrence["run_id"], occurrence["try_number"]) == (RUN_ID, 1)
        assert artifacts.list(f"incidents/{incident.incident_id}/occurrences") == [occurrence_name(incident)]

    def test_captured_manifest_is_used_when_none_is_configured(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        (node,) = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident.nodes
        assert node.downstream == (CHILD, NOT_NULL)

    def test_git_sha_of_the_dbt_project(self, project: Path, artifacts: ArtifactStore) -> None:
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "init", "-q"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "init"], check=True)
        head = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        incident = SelfhealFailureNotifier(dispatch=False).handle(context(project)).incident
        assert incident.git_sha == head

    def test_non_cosmos_task_without_artifacts(self, project: Path, artifacts: ArtifactStore) -> None:
        ctx = context(
            project,
            exception=RuntimeError("Bash command failed. The command returned a non-zero exit code 1."),
        )
        del ctx["dbt_node_config"]
        incident = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident
        assert incident.nodes == ()
        assert (
            incident.error
            == "RuntimeError: Bash command failed. The command returned a non-zero exit code 1."
        )
        assert any(
            n.startswith("dbt_node_config missing from the context (not a cosmos dbt task)")
            for n in incident.missing
        )
        assert any(n.startswith("run_results.json not captured for this try") for n in incident.missing)
        assert (incident.triage or {})["failure_class"] == "unknown"
        assert IncidentStore().get(incident.incident_id) == incident

    def test_non_cosmos_task_with_artifacts_takes_the_node_from_run_results(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        del ctx["dbt_node_config"]
        incident = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident
        assert [node.unique_id for node in incident.nodes] == [STG_ORDERS]
        assert (incident.triage or {})["failure_class"] == "missing_column"
        assert incident.missing == (
            "dbt_node_config missing from the context (not a cosmos dbt task): dbt node taken from run_results.json",
        )

    def test_missing_exception_uses_the_run_results_message(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        del ctx["exception"]
        incident = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident
        assert incident.missing == ("exception missing from the context",)
        assert incident.error.startswith("Database Error in model stg_orders")
        assert (incident.triage or {})["failure_class"] == "missing_column"

    @EACH_ROOT
    def test_corrupt_run_results_in_the_store(self, project: Path, artifacts: ArtifactStore) -> None:
        assert artifacts.create_bytes(f"{prefix()}/run_results.json", b'{"results": [{"status": "err')
        notifier = SelfhealFailureNotifier(manifest_path=project / "target" / "manifest.json", dispatch=False)
        incident = notifier.handle(context(project)).incident
        assert [node.unique_id for node in incident.nodes] == [STG_ORDERS]
        assert incident.run_results_excerpt == ()
        assert incident.compiled_sql is None
        assert any(
            "run_results.json at dbt_artifacts/" in n and "is corrupt (JSONDecodeError" in n
            for n in incident.missing
        )
        assert f"compiled SQL of {STG_ORDERS} not captured" in incident.missing
        assert (incident.triage or {})["failure_class"] == "missing_column"

    def test_empty_context_still_records_an_incident(self, artifacts: ArtifactStore) -> None:
        outcome = SelfhealFailureNotifier().handle({})
        incident = outcome.incident
        assert (incident.pipeline, incident.run_id, incident.nodes) == ("unknown", None, ())
        assert "task instance missing from the context: run, task and try unknown" in incident.missing
        assert "exception missing from the context" in incident.missing
        assert (incident.triage or {})["failure_class"] == "unknown"
        assert IncidentStore().get(incident.incident_id) == incident
        # Outside a task process there is no supervisor to start the repair run: reported, not raised.
        assert outcome.dispatch is None
        assert any("could not start the repair DAG: DispatchError" in error for error in outcome.errors)

    def test_failed_test_is_classified_by_its_generic_test(
        self, tmp_path: Path, artifacts: ArtifactStore
    ) -> None:
        run_results = {**REAL_RUN_RESULTS, "results": [FAILED_TEST_RESULT]}
        project = write_project(tmp_path / "p", run_results)
        ti = FakeTaskInstance(task_id="shop.stg_orders.test")
        # cosmos' test task carries the model's node config; the failed node is the test.
        ctx = context(
            project,
            ti=ti,
            exception=CosmosDbtRunError(
                "dbt invocation completed with errors: not_null_stg_orders_customer_id: Got 5 results, configured to fail if != 0"
            ),
        )
        capture_dbt_artifacts(project, context=ctx)
        incident = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident
        (node,) = incident.nodes
        assert (node.unique_id, node.resource_type, node.upstream) == (NOT_NULL, "test", (STG_ORDERS,))
        assert (incident.triage or {})["failure_class"] == "test_not_null"
        assert failure_page(incident).title == (
            "dbt run failed in dev: test not_null_stg_orders_customer_id (test_not_null)"
        )

    def test_drift_report_of_another_baseline_is_not_correlated(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        ti = FakeTaskInstance(xcoms={"check_source_drift": drift_report("other_raw")})
        incident = (
            SelfhealFailureNotifier(drift_baseline="shop_raw", dispatch=False)
            .handle(context(project, ti=ti))
            .incident
        )
        assert (incident.triage or {})["root_cause"] is None
        assert (
            "drift report of task 'check_source_drift' unavailable, so no root cause was correlated: no report in this run"
            in incident.missing
        )

    def test_drift_pull_failure_is_a_note(self, project: Path, artifacts: ArtifactStore) -> None:
        class BrokenPull(FakeTaskInstance):
            def xcom_pull(
                self, task_ids: str, dag_id: str | None = None, run_id: str | None = None, **kwargs: Any
            ) -> Any:
                raise ConnectionError("supervisor gone, password=hunter2")

        incident = SelfhealFailureNotifier(dispatch=False).handle(context(project, ti=BrokenPull())).incident
        assert any(
            n.endswith("ConnectionError: supervisor gone, password=***REDACTED***") for n in incident.missing
        )
        assert (incident.triage or {})["failure_class"] == "missing_column"

    def test_notify_never_raises(
        self, project: Path, artifacts: ArtifactStore, capsys: pytest.CaptureFixture[str]
    ) -> None:
        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("cannot render")

        notifier = SelfhealFailureNotifier(dispatch=False)
        notifier.notify(context(project, exception=Unprintable()))  # type: ignore[arg-type]
        # Airflow's task logging (structlog) writes to the console here.
        logged = capsys.readouterr()
        assert "The selfheal failure callback failed" in logged.out + logged.err
        assert IncidentStore().list() == []

        notifier(context(project))  # BaseNotifier.__call__, as Airflow calls it
        assert [incident.task_id for incident in IncidentStore().list()] == [TASK_ID]

    def test_arguments_are_checked(self) -> None:
        with pytest.raises(ValueError, match="slack_conn_id must be a non-empty string or None"):
            SelfhealFailureNotifier(slack_conn_id="")
        with pytest.raises(ValueError, match="secrets must be a sequence"):
            SelfhealFailureNotifier(secrets="hunter2")
        assert send_selfheal_failure_notification is SelfhealFailureNotifier


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with http_receiver() as rec:
        connections = {
            "slack_test": Connection(
                conn_id="slack_test", conn_type="slackwebhook", password=f"{rec.url}/services/T1/B1/XYZ"
            ),
            "pd_test": Connection(
                conn_id="pd_test", conn_type="pagerduty_events", host=rec.url, password=ROUTING_KEY
            ),
            # The dbt profile's warehouse connection: a 3-character password and a secret extra.
            "sf_test": Connection(
                conn_id="sf_test",
                conn_type="snowflake",
                login="etl",
                password="hx7",
                extra=json.dumps({"account": "acme", "private_key_passphrase": "pk-pass-42"}),
            ),
        }
        for conn_id, connection in connections.items():
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", connection.as_json())
        yield rec


class TestSecretsAndNotification:
    SECRETS = (
        "hx7",
        "pk-pass-42",
        "hunter2",
        "xoxb-1234-5678-abcdefghij",
        "T0000/B0000/XXXXXXXXXXXXXXXX",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldGwifQ.c2lnbmF0dXJl",
    )

    def test_secrets_are_redacted_in_store_and_payloads(
        self, project: Path, artifacts: ArtifactStore, receiver: Receiver
    ) -> None:
        leaky = (
            f"{COSMOS_ERROR}\nconnecting as etl with password hx7 (passphrase pk-pass-42) "
            "snowflake://etl:hunter2@acme.snowflakecomputing.com token xoxb-1234-5678-abcdefghij "
            "webhook https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX "
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldGwifQ.c2lnbmF0dXJl"
        )
        ctx = context(project, conn_id="sf_test", exception=CosmosDbtRunError(leaky))
        capture_dbt_artifacts(project, context=ctx)
        notifier = SelfhealFailureNotifier(
            manifest_path=project / "target" / "manifest.json",
            slack_conn_id="slack_test",
            pagerduty_conn_id="pd_test",
            environment="prod",
            dispatch=False,
        )

        outcome = notifier.handle(ctx)

        stored = artifacts.read_text(f"incidents/{outcome.incident.incident_id}/incident.json")
        assert REDACTED in stored
        bodies = {d.path: d.body.decode() for d in receiver.deliveries}
        assert sorted(bodies) == ["/services/T1/B1/XYZ", "/v2/enqueue"]
        for secret in self.SECRETS:
            assert secret not in stored, secret
            for path, body in bodies.items():
                assert secret not in body, (secret, path)
        assert (outcome.incident.triage or {})["failure_class"] == "missing_column"

        slack = json.loads(bodies["/services/T1/B1/XYZ"])
        assert (
            slack["blocks"][0]["text"]["text"] == "dbt run failed in prod: model stg_orders (missing_column)"
        )
        assert "Column CUSTOMER_EMAIL referenced by stg_orders no longer exists" in json.dumps(slack)
        assert "Upstream rename: RAW.ORDERS.CUSTOMER_EMAIL -> RAW.ORDERS.EMAIL_ADDRESS" in json.dumps(slack)
        event = json.loads(bodies["/v2/enqueue"])
        assert event["dedup_key"] == outcome.incident.fingerprint
        assert event["payload"]["summary"] == "dbt run failed in prod: model stg_orders (missing_column)"
        assert event["payload"]["severity"] == "error"
        assert outcome.delivery is not None
        assert outcome.delivery.channels == {"slack": "sent", "pagerduty": "sent"}

    @EACH_ROOT
    def test_repeat_failure_notifies_once(
        self, project: Path, artifacts: ArtifactStore, receiver: Receiver
    ) -> None:
        notifier = SelfhealFailureNotifier(slack_conn_id="slack_test", dispatch=False)
        first = notifier.handle(context(project))
        rerun = FakeTaskInstance(
            run_id="manual__2026-03-02T06:00:00+00:00", xcoms={"check_source_drift": drift_report()}
        )
        second = notifier.handle(context(project, ti=rerun))
        assert first.incident.fingerprint == second.incident.fingerprint
        assert (first.new_incident, second.new_incident) == (True, False)
        assert second.delivery is not None
        assert second.delivery.duplicate is True
        assert len(receiver.deliveries) == 1
        assert [o["run_id"] for o in IncidentStore().occurrences(first.incident.incident_id)] == [
            RUN_ID,
            "manual__2026-03-02T06:00:00+00:00",
        ]


class TestRepairConf:
    def test_conf_carries_the_incident(self, project: Path, artifacts: ArtifactStore) -> None:
        incident = SelfhealFailureNotifier(dispatch=False).handle(context(project)).incident
        conf = repair_conf(incident)
        assert (conf["incident_id"], conf["fingerprint"]) == (incident.incident_id, incident.fingerprint)
        assert conf["incident"] == incident.to_dict()
        # Relative to the artifacts root, which the repair DAG reads it through, whatever the root's kind.
        assert conf["incident_path"] == f"incidents/{incident.incident_id}/incident.json"
        assert artifacts.exists(conf["incident_path"])

    @EACH_ROOT
    def test_oversized_incident_is_left_to_the_store(self, tmp_path: Path, artifacts: ArtifactStore) -> None:
        many = copy.deepcopy(REAL_RUN_RESULTS)
        template = many["results"][0]
        many["results"] = [
            {**template, "unique_id": f"model.selfheal_demo.m{n}", "message": f"{n} " + "x" * 1990}
            for n in range(400)
        ]
        project = write_project(tmp_path / "p", many)
        ctx = context(project)
        capture_dbt_artifacts(project, context=ctx)
        incident = SelfhealFailureNotifier(dispatch=False).handle(ctx).incident
        assert len(json.dumps(incident.to_dict())) > MAX_CONF_BYTES
        conf = repair_conf(incident)
        assert conf["incident"] is None
        assert conf["incident_truncated"] is True
        assert len(json.dumps(conf)) < MAX_CONF_BYTES
        # The repair DAG's triage reads it back through the configured store.
        assert load_incident(conf) == incident.to_dict()
