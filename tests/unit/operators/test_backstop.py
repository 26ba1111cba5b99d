"""The backstop: orphan filtering on REST-shaped JSON, log rendering and triage, and one run against a loopback
REST stand-in that answers the api-server's GETs and records the dispatch POSTs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.incident import build_incident
from airflow_selfheal.core.triage import classify
from airflow_selfheal.dags.backstop import build_backstop_dag
from airflow_selfheal.hooks.airflow_api import AirflowApiClient
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.operators.backstop import (
    MISSING_CALLBACK_NOTE,
    IncidentBackstopOperator,
    backstop,
    occurrence_key_name,
    render_log,
    select_orphans,
)
from airflow_selfheal.records.incidents import IncidentStore, occurrence_name
from tests.support.backstop import NOW, OOM_LOG, SINCE, FakeApiServer, task_instance

if TYPE_CHECKING:
    from pathlib import Path


class TestSelectOrphans:
    @pytest.mark.parametrize(
        ("overrides", "selected"),
        [
            pytest.param({}, True, id="dbt-run"),
            pytest.param(
                {"operator": "DbtBuildLocalOperator", "operator_name": None}, True, id="operator-only"
            ),
            pytest.param(
                {"operator": "_PythonDecoratedOperator", "operator_name": "@task"}, False, id="not-dbt"
            ),
            pytest.param({"state": "success"}, False, id="not-failed"),
            pytest.param({"end_date": (SINCE - timedelta(seconds=1)).isoformat()}, False, id="before-window"),
            pytest.param({"end_date": None}, False, id="never-ended"),
        ],
    )
    def test_filters(self, overrides: dict[str, Any], selected: bool) -> None:
        item = task_instance(**overrides)
        assert select_orphans([item], recorded=set(), since=SINCE) == ([item] if selected else [])

    def test_recorded_try_is_skipped_but_next_try_is_not(self) -> None:
        first, second = task_instance(), task_instance(try_number=2)
        recorded = {("shop", first["dag_run_id"], first["task_id"], -1, 1)}
        assert select_orphans([first, second], recorded=recorded, since=SINCE) == [second]

    def test_too_young_failure_waits_for_its_callback(self) -> None:
        young = task_instance(end_date=NOW.isoformat())
        assert (
            select_orphans([young], recorded=set(), since=SINCE, settled_before=NOW - timedelta(minutes=2))
            == []
        )

    @pytest.mark.parametrize("map_index", [pytest.param(-1, id="unmapped"), pytest.param(3, id="mapped")])
    def test_occurrence_name_matches_the_callbacks(self, map_index: int) -> None:
        item = task_instance(map_index=map_index)
        incident = build_incident(
            pipeline="shop",
            run_id=item["dag_run_id"],
            task_id=item["task_id"],
            map_index=map_index,
            try_number=1,
            nodes=(),
            error="boom",
            failed_at=NOW,
        )
        assert occurrence_key_name(item) == occurrence_name(incident)


class TestLog:
    def test_supervisor_oom_message_is_resource(self) -> None:
        text, sources = render_log(OOM_LOG)
        assert "CRITICAL Process terminated by signal" in text
        assert "signal_name=SIGKILL" in text
        assert "attempt=1.log" not in text
        assert sources == [OOM_LOG["content"][1]["event"]]
        assert classify(text).failure_class.value == "resource"

    def test_log_server_error_is_not_the_tasks_error(self) -> None:
        # What the api-server answers when the task's log file is on an unreachable worker (seen under dag.test()).
        body = {
            "content": [
                {"event": "::group::Log message source details"},
                {
                    "event": "Could not read served logs: HTTPConnectionPool(host='vm', port=8793): Connection refused"
                },
                {"event": "::endgroup::"},
            ]
        }
        text, sources = render_log(body)
        assert text == ""
        assert sources[0].startswith("Could not read served logs")

    @pytest.mark.parametrize(
        "line",
        [
            pytest.param("Killed", id="killed"),
            pytest.param("dbt exited with exit code -9", id="exit-code-9"),
            pytest.param("java.lang.OutOfMemoryError: Java heap space", id="oom"),
        ],
    )
    def test_kill_wording_is_resource(self, line: str) -> None:
        assert classify(render_log({"content": [line]})[0]).failure_class.value == "resource"

    def test_exception_detail_is_rendered(self) -> None:
        body = {
            "content": [
                {
                    "event": "Task failed with exception",
                    "level": "error",
                    "error_detail": [{"exc_type": "CosmosDbtRunError", "exc_value": "dbt invocation failed"}],
                }
            ]
        }
        assert render_log(body)[0].splitlines() == [
            "ERROR Task failed with exception",
            "CosmosDbtRunError: dbt invocation failed",
        ]

    @pytest.mark.parametrize("body", [pytest.param({}, id="no-content"), pytest.param([], id="not-object")])
    def test_no_content_is_empty(self, body: Any) -> None:
        assert render_log(body) == ("", [])


@pytest.fixture
def incidents(tmp_path: Path) -> IncidentStore:
    return IncidentStore(ArtifactStore(str(tmp_path / "artifacts")))


class TestBackstop:
    def test_reports_each_orphan_once(self, api: FakeApiServer, incidents: IncidentStore) -> None:
        killed = task_instance()
        no_log = task_instance(task_id="shop.stg_customers_run", operator="DbtTestLocalOperator")
        api.task_instances = [
            killed,
            no_log,
            task_instance(task_id="notify", operator="PythonOperator", operator_name="@task"),
        ]
        api.logs = {killed["task_id"]: OOM_LOG}
        client = AirflowApiClient(api.url)

        summary = backstop(client, since=SINCE, dag_ids=["shop"], store=incidents, repair_dag_id="repair")

        json.dumps(summary)  # the XCom value must serialise
        assert summary["orphans"] == 2
        by_task = {entry["task_id"]: entry for entry in summary["incidents"]}
        assert by_task[killed["task_id"]]["failure_class"] == "resource"
        assert by_task[no_log["task_id"]]["failure_class"] == "unknown"
        assert all(entry["new_incident"] and not entry["errors"] for entry in summary["incidents"])
        assert {entry["dispatch"]["created"] for entry in summary["incidents"]} == {True}
        assert len(api.runs) == 2
        stored = incidents.get(by_task[killed["task_id"]]["incident_id"])
        assert stored.missing[0] == MISSING_CALLBACK_NOTE
        assert "signal_name=SIGKILL" in stored.error
        assert (
            api.runs[by_task[killed["task_id"]]["dispatch"]["run_id"]]["conf"]["incident_id"]
            == stored.incident_id
        )
        unlogged = incidents.get(by_task[no_log["task_id"]]["incident_id"])
        assert unlogged.missing[1].startswith("task log unavailable (GET /api/v2/dags/shop/dagRuns/")
        listed = [
            request for request in api.requests if request[1] == "/api/v2/dags/shop/dagRuns/~/taskInstances"
        ]
        assert listed[0][2]["end_date_gte"] == [SINCE.isoformat()]

        again = backstop(client, since=SINCE, dag_ids=["shop"], store=incidents, repair_dag_id="repair")

        assert again["orphans"] == 0
        assert again["incidents"] == []
        assert len(api.runs) == 2

    def test_unreachable_repair_dag_is_reported_and_incident_kept(
        self, api: FakeApiServer, incidents: IncidentStore
    ) -> None:
        api.task_instances = [task_instance()]
        summary = backstop(
            AirflowApiClient(api.url), since=SINCE, dag_ids=None, store=incidents, repair_dag_id="bad id!"
        )
        (entry,) = summary["incidents"]
        assert entry["dispatch"] is None
        assert entry["errors"][0].startswith("could not start the repair DAG: dag_id must be")
        assert incidents.get(entry["incident_id"]).task_id == "shop.stg_orders_run"


class TestOperator:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            pytest.param({"airflow_conn_id": ""}, "airflow_conn_id", id="empty-conn"),
            pytest.param(
                {"airflow_conn_id": "api", "lookback": timedelta(0)}, "lookback", id="zero-lookback"
            ),
            pytest.param({"airflow_conn_id": "api", "dag_ids": "shop"}, "dag_ids", id="dag-ids-string"),
            pytest.param(
                {"airflow_conn_id": "api", "lookback": timedelta(minutes=1)},
                "grace",
                id="grace-over-lookback",
            ),
        ],
    )
    def test_bad_arguments_fail_at_parse_time(self, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            IncidentBackstopOperator(task_id="backstop", **kwargs)

    def test_factory_builds_a_scheduled_dag(self) -> None:
        dag = build_backstop_dag(airflow_conn_id="api", dag_ids=["shop"])
        (task,) = dag.tasks
        assert isinstance(task, IncidentBackstopOperator)
        assert (dag.dag_id, task.dag_ids, dag.max_active_runs) == ("selfheal_backstop", ["shop"], 1)
        assert str(dag.schedule) == "*/10 * * * *"

    def test_execute_reads_the_connection(
        self, api: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from airflow.models.connection import Connection

        conn = Connection(conn_id="selfheal_api", conn_type="http", host=api.url)
        monkeypatch.setenv("AIRFLOW_CONN_SELFHEAL_API", conn.get_uri())
        monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
        api.task_instances = [task_instance()]
        operator = IncidentBackstopOperator(
            task_id="backstop", airflow_conn_id="selfheal_api", repair_dag_id="repair", grace=timedelta(0)
        )
        summary = operator.execute({})
        assert summary["orphans"] == 1
        assert list(api.runs) == [summary["incidents"][0]["dispatch"]["run_id"]]
