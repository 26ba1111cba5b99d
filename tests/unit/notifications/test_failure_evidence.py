"""The evidence of a failed try, read piece by piece: its key, the captured artifacts, the dbt nodes, the drift
report, the dbt project and the connection secrets. Missing evidence is a note, never an exception."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactStoreError
from airflow_selfheal.notifications.failure_evidence import (
    CAPTURE_HINT,
    TaskKey,
    artifact_prefix,
    blocked_ref,
    captured_compiled_sql,
    captured_freshness,
    captured_run_results,
    connection_secrets,
    dbt_project_dir,
    downstream_dbt_nodes,
    drift_events,
    error_text,
    generic_test_name,
    load_manifest_cached,
    node_ref,
    operator_connection_secrets,
    pipeline_manifest,
    task_key,
)
from dev.failure_contexts import (
    CHILD,
    DAG_ID,
    MANIFEST,
    NOT_NULL,
    REAL_RUN_RESULTS,
    RENAME,
    RUN_ID,
    SOURCE,
    STG_ORDERS,
    STG_ORDERS_SQL,
    TASK_ID,
    FakeTaskInstance,
    drift_report,
    node_config,
)

if TYPE_CHECKING:
    from airflow_selfheal.hooks.artifacts import ArtifactStore

KEY = TaskKey(DAG_ID, RUN_ID, TASK_ID, -1, 1)


@pytest.fixture
def artifacts(artifact_store: ArtifactStore) -> ArtifactStore:
    """The readers' store: each test that reads captured artifacts runs on a file:// and an s3:// root."""
    return artifact_store


def put(store: ArtifactStore, relative: str, text: str | bytes) -> None:
    """Store one captured artifact of :data:`KEY`'s try, as the capture callback does."""
    data = text.encode() if isinstance(text, str) else text
    assert store.create_bytes(f"{artifact_prefix(KEY)}/{relative}", data)


class TestTaskKey:
    def test_key_of_a_task_instance(self) -> None:
        key = task_key({"ti": FakeTaskInstance(map_index=3, try_number=2)})
        assert key == TaskKey(DAG_ID, RUN_ID, TASK_ID, 3, 2)

    def test_what_the_task_instance_lacks_comes_from_the_context(self) -> None:
        ti = SimpleNamespace(task_id="t", map_index="?", try_number=None)
        key = task_key({"task_instance": ti, "dag": SimpleNamespace(dag_id="d"), "run_id": "r"})
        assert key == TaskKey("d", "r", "t", -1, None)

    @pytest.mark.parametrize(
        "context",
        [
            pytest.param({}, id="no-ti"),
            pytest.param({"ti": SimpleNamespace(), "dag": object()}, id="no-dag-id"),
        ],
    )
    def test_no_key_without_a_task_instance_and_dag(self, context: dict[str, Any]) -> None:
        assert task_key(context) is None

    def test_prefix_is_one_path_safe_folder_per_part(self) -> None:
        parts = artifact_prefix(KEY).split("/")
        assert parts[0] == "dbt_artifacts"
        assert (parts[1], parts[3], parts[4], parts[5]) == (DAG_ID, TASK_ID, "-1", "1")
        assert ":" not in parts[2]
        assert "+" not in parts[2]
        assert artifact_prefix(KEY._replace(try_number=2)) != artifact_prefix(KEY)


class TestCapturedRunResults:
    def test_only_the_failed_results(self, artifacts: ArtifactStore) -> None:
        passing = {**REAL_RUN_RESULTS["results"][0], "status": "success", "unique_id": CHILD}
        put(artifacts, "run_results.json", json.dumps({"results": [passing, *REAL_RUN_RESULTS["results"]]}))
        missing: list[str] = []
        failed = captured_run_results(artifacts, artifact_prefix(KEY), missing)
        assert [result["unique_id"] for result in failed] == [STG_ORDERS]
        assert missing == []

    @pytest.mark.parametrize(
        ("text", "note"),
        [
            pytest.param(None, f"run_results.json not captured for this try ({CAPTURE_HINT})", id="absent"),
            pytest.param(
                '{"results": {}}', "is corrupt (TypeError: 'results' is not a list)", id="not-a-list"
            ),
            pytest.param('{"res', "is corrupt (JSONDecodeError", id="truncated"),
            pytest.param(
                '{"results": [{"status": "success"}]}', "run_results.json names no failed node", id="green"
            ),
        ],
    )
    def test_no_failed_results_is_a_note(self, artifacts: ArtifactStore, text: str | None, note: str) -> None:
        if text is not None:
            put(artifacts, "run_results.json", text)
        missing: list[str] = []
        assert captured_run_results(artifacts, artifact_prefix(KEY), missing) == []
        (only,) = missing
        assert note in only

    def test_no_store_is_a_note(self) -> None:
        missing: list[str] = []
        assert captured_run_results(None, None, missing) == []
        assert missing == ["run_results.json not read: no artifacts key for this try"]


class TestCapturedCompiledSqlAndFreshness:
    def test_the_captured_file_first_then_the_run_result(self, artifacts: ArtifactStore) -> None:
        put(artifacts, f"compiled/{STG_ORDERS}.sql", "select 1")
        missing: list[str] = []
        result = REAL_RUN_RESULTS["results"][0]
        assert (
            captured_compiled_sql(artifacts, artifact_prefix(KEY), STG_ORDERS, result, missing) == "select 1"
        )
        assert (
            captured_compiled_sql(artifacts, artifact_prefix(KEY), CHILD, result, missing) == STG_ORDERS_SQL
        )
        assert missing == []

    def test_neither_is_a_note(self, artifacts: ArtifactStore) -> None:
        missing: list[str] = []
        assert captured_compiled_sql(artifacts, artifact_prefix(KEY), STG_ORDERS, None, missing) is None
        assert captured_compiled_sql(None, None, None, None, missing) is None
        assert missing == [f"compiled SQL of {STG_ORDERS} not captured"]

    def test_freshness_needs_a_readable_sources_json(self, artifacts: ArtifactStore) -> None:
        prefix = artifact_prefix(KEY)
        assert captured_freshness(artifacts, prefix, SOURCE) is None
        put(artifacts, "sources.json", "{not json")
        assert captured_freshness(artifacts, prefix, SOURCE) is None
        assert captured_freshness(None, None, SOURCE) is None


class TestUnreadableStore:
    """A captured artifact the store cannot give back is a note or a fallback, like a missing one."""

    def test_not_text_is_a_note(self, artifacts: ArtifactStore) -> None:
        put(artifacts, "run_results.json", b"\xff\xfe{")
        missing: list[str] = []
        assert captured_run_results(artifacts, artifact_prefix(KEY), missing) == []
        (note,) = missing
        assert note.startswith("run_results.json unreadable at dbt_artifacts/")
        assert "ArtifactCorruptError" in note
        assert artifacts.url(f"{artifact_prefix(KEY)}/run_results.json") in note

    def test_a_store_that_fails_is_never_an_exception(
        self, artifacts: ArtifactStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in ("run_results.json", "sources.json", "manifest.json", f"compiled/{STG_ORDERS}.sql"):
            put(artifacts, name, "{}")

        def fail(relative: str) -> bytes:
            raise ArtifactStoreError(f"artifacts root {artifacts.root}: read {relative}: connection refused")

        monkeypatch.setattr(artifacts, "read_bytes", fail)
        prefix = artifact_prefix(KEY)
        missing: list[str] = []
        assert captured_run_results(artifacts, prefix, missing) == []
        assert captured_freshness(artifacts, prefix, SOURCE) is None
        result = REAL_RUN_RESULTS["results"][0]
        assert captured_compiled_sql(artifacts, prefix, STG_ORDERS, result, missing) == STG_ORDERS_SQL
        assert pipeline_manifest(None, artifacts, prefix, missing) is None
        run_results, manifest = missing
        assert run_results.startswith("run_results.json unreadable at dbt_artifacts/")
        assert "connection refused" in run_results
        assert "captured manifest.json unreadable (artifacts root" in manifest


class TestErrorText:
    def test_exception_then_the_messages_it_lacks(self) -> None:
        missing: list[str] = []
        results = [{"message": "boom"}, {"message": "second failure"}, {"message": None}]
        text = error_text(RuntimeError("dbt failed: boom"), results, missing)
        assert text == "RuntimeError: dbt failed: boom\nsecond failure"
        assert missing == []

    def test_without_an_exception_the_messages_are_the_text(self) -> None:
        missing: list[str] = []
        assert error_text(None, [{"message": "boom"}], missing) == "boom"
        assert missing == ["exception missing from the context"]

    def test_a_text_exception_is_kept_as_is(self) -> None:
        assert error_text("Task killed", [], []) == "Task killed"

    def test_no_text_at_all_is_a_note(self) -> None:
        missing: list[str] = []
        assert error_text(None, [], missing) == ""
        assert missing[-1] == "no error text: neither an exception nor a failed result's message"


class CosmosResourceType(Enum):
    """Stands for cosmos' ``DbtResourceType``, whose members the node config carries."""

    MODEL = "model"
    SOURCE = "source"


class TestNodes:
    def test_node_from_the_manifest_has_its_lineage(self) -> None:
        node = node_ref(STG_ORDERS, MANIFEST, None)
        assert (node.resource_type, node.name, node.original_file_path) == (
            "model",
            "stg_orders",
            "models/staging/stg_orders.sql",
        )
        assert (node.upstream, node.downstream) == ((SOURCE,), (CHILD, NOT_NULL))

    def test_without_a_manifest_the_cosmos_node_config(self, tmp_path: Path) -> None:
        config = {**node_config(tmp_path), "resource_type": CosmosResourceType.MODEL}
        node = node_ref(STG_ORDERS, None, config)
        assert (node.resource_type, node.name, node.upstream, node.downstream) == (
            "model",
            "stg_orders",
            (SOURCE,),
            (),
        )

    def test_without_either_the_unique_id(self) -> None:
        node = node_ref("model.shop.orders_daily", None, None)
        assert (node.resource_type, node.name, node.original_file_path) == ("model", "orders_daily", None)

    @pytest.mark.parametrize(
        ("config", "expected"),
        [
            pytest.param({"unique_id": STG_ORDERS}, ("model", "stg_orders"), id="manifest"),
            pytest.param(
                {"unique_id": "source.shop.raw.payments", "resource_type": CosmosResourceType.SOURCE},
                ("source", "payments"),
                id="source-is-its-table",
            ),
            pytest.param(
                {"unique_id": "model.shop.orders_daily", "resource_type": "DbtResourceType.MODEL"},
                ("model", "orders_daily"),
                id="repr",
            ),
        ],
    )
    def test_blocked_node_is_named_as_dbt_select_names_it(
        self, config: dict[str, Any], expected: tuple[str, str]
    ) -> None:
        node = blocked_ref(config, MANIFEST)
        assert (node.resource_type, node.name) == expected

    def test_generic_test_name(self) -> None:
        assert generic_test_name(MANIFEST, NOT_NULL) == "not_null"
        assert generic_test_name(MANIFEST, STG_ORDERS) is None
        assert generic_test_name(None, NOT_NULL) is None


class FakeTask:
    def __init__(self, task_id: str, node: dict[str, Any] | None = None, relatives: list[Any] | None = None):
        self.task_id = task_id
        self.extra_context = {"dbt_node_config": node} if node else {}
        self._relatives = relatives or []

    def get_flat_relatives(self, upstream: bool = False) -> list[Any]:
        assert upstream is False
        return self._relatives


class TestDownstreamDbtNodes:
    def test_one_config_per_node_sorted(self) -> None:
        run = FakeTask("shop.stg_orders.run", {"unique_id": STG_ORDERS, "name": "stg_orders"})
        test = FakeTask("shop.stg_orders.test", {"unique_id": STG_ORDERS, "name": "stg_orders"})
        child = FakeTask("shop.fct_orders.run", {"unique_id": CHILD})
        other = FakeTask("notify")
        check = FakeTask("check_source_drift", relatives=[run, child, test, other])
        assert [config["unique_id"] for config in downstream_dbt_nodes(check)] == [CHILD, STG_ORDERS]

    def test_a_broken_walk_gives_none(self) -> None:
        class Broken(FakeTask):
            def get_flat_relatives(self, upstream: bool = False) -> list[Any]:
                raise RuntimeError("no DAG")

        assert downstream_dbt_nodes(Broken("t")) == []
        assert downstream_dbt_nodes(object()) == []


class TestManifest:
    def test_configured_then_captured_then_a_note(self, artifacts: ArtifactStore, tmp_path: Path) -> None:
        configured = tmp_path / "manifest.json"
        configured.write_text(json.dumps(MANIFEST))
        prefix = artifact_prefix(KEY)
        missing: list[str] = []
        assert pipeline_manifest(str(configured), artifacts, prefix, missing) == MANIFEST

        put(artifacts, "manifest.json", json.dumps({**MANIFEST, "metadata": {"project_name": "captured"}}))
        captured = pipeline_manifest(str(tmp_path / "absent.json"), artifacts, prefix, missing)
        assert captured is not None
        assert captured["metadata"] == {"project_name": "captured"}
        assert missing == []

        assert pipeline_manifest(None, None, None, missing) is None
        assert missing == ["dbt manifest unavailable, so upstream/downstream are unknown: none configured"]

    def test_every_reason_is_named(self, artifacts: ArtifactStore, tmp_path: Path) -> None:
        missing: list[str] = []
        assert (
            pipeline_manifest(str(tmp_path / "absent.json"), artifacts, artifact_prefix(KEY), missing) is None
        )
        (note,) = missing
        assert "absent.json" in note
        assert note.endswith("; no manifest.json was captured")

    def test_parsed_once_per_file_version(self, tmp_path: Path) -> None:
        path = tmp_path / "manifest.json"
        path.write_text(json.dumps(MANIFEST))
        first = load_manifest_cached(str(path))
        assert load_manifest_cached(str(path)) is first
        path.write_text(json.dumps({**MANIFEST, "metadata": {"project_name": "changed"}}))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert load_manifest_cached(str(path))["metadata"] == {"project_name": "changed"}


class TestDriftEvents:
    def test_events_of_this_runs_report(self) -> None:
        ti = FakeTaskInstance(xcoms={"check_source_drift": drift_report()})
        missing: list[str] = []
        events = drift_events(
            ti, KEY, drift_task_id="check_source_drift", drift_baseline="shop_raw", missing=missing
        )
        assert events == [RENAME]
        assert ti.pulls == [{"task_ids": "check_source_drift", "dag_id": DAG_ID, "run_id": RUN_ID}]
        assert missing == []

    def test_mapped_reports_are_all_read(self) -> None:
        ti = FakeTaskInstance(xcoms={"check": [drift_report(), drift_report("other"), "not a report"]})
        events = drift_events(ti, KEY, drift_task_id="check", drift_baseline=None, missing=[])
        assert events == [RENAME, RENAME]

    def test_no_drift_task_reads_nothing(self) -> None:
        ti = FakeTaskInstance()
        assert drift_events(ti, KEY, drift_task_id=None, drift_baseline=None, missing=[]) == []
        assert ti.pulls == []

    @pytest.mark.parametrize(
        ("ti", "note"),
        [
            pytest.param(None, "no task instance", id="no-ti"),
            pytest.param(FakeTaskInstance(), "no report in this run", id="no-report"),
            pytest.param(
                FakeTaskInstance(xcoms={"check_source_drift": drift_report("other_raw")}),
                "no report in this run",
                id="other-baseline",
            ),
        ],
    )
    def test_no_report_is_a_note(self, ti: Any, note: str) -> None:
        missing: list[str] = []
        assert (
            drift_events(
                ti, KEY, drift_task_id="check_source_drift", drift_baseline="shop_raw", missing=missing
            )
            == []
        )
        assert missing == [
            f"drift report of task 'check_source_drift' unavailable, so no root cause was correlated: {note}"
        ]


class TestProject:
    def test_configured_then_from_the_cosmos_node_then_from_the_manifest(self, tmp_path: Path) -> None:
        config = node_config(tmp_path / "project")
        assert dbt_project_dir("/opt/dbt/shop", config, None) == "/opt/dbt/shop"
        assert dbt_project_dir(None, config, None) == str(tmp_path / "project")
        manifest = tmp_path / "shop" / "target" / "manifest.json"
        assert dbt_project_dir(None, {"file_path": "models/x.sql"}, str(manifest)) == str(
            (tmp_path / "shop").resolve()
        )
        assert dbt_project_dir(None, None, None) is None


class TestConnectionSecrets:
    @pytest.fixture
    def warehouse_connection(self, monkeypatch: pytest.MonkeyPatch) -> str:
        from airflow.models import Connection

        connection = Connection(
            conn_id="sf_evidence",
            conn_type="snowflake",
            login="etl",
            password="hx7",
            extra=json.dumps({"account": "acme", "private_key_passphrase": "pk-pass-42"}),
        )
        monkeypatch.setenv("AIRFLOW_CONN_SF_EVIDENCE", connection.as_json())
        return "sf_evidence"

    def test_profile_connection_of_a_cosmos_task(self, warehouse_connection: str) -> None:
        mapping = SimpleNamespace(conn_id=warehouse_connection)
        task = SimpleNamespace(profile_config=SimpleNamespace(profile_mapping=mapping))
        assert connection_secrets({"task": task}) == ["hx7", "pk-pass-42"]
        assert operator_connection_secrets({"task": task}) == []

    def test_snowflake_connection_of_another_task(self, warehouse_connection: str) -> None:
        task = SimpleNamespace(snowflake_conn_id=warehouse_connection)
        assert operator_connection_secrets({"task": task}) == ["hx7", "pk-pass-42"]
        assert connection_secrets({"task": task}) == []

    def test_an_unknown_connection_gives_none(self) -> None:
        assert operator_connection_secrets({"task": SimpleNamespace(snowflake_conn_id="nope")}) == []
        assert connection_secrets({}) == []
