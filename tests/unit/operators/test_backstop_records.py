"""The backstop reads the incident occurrences through the artifact store: on a folder root and on an ``s3://`` root
(moto on loopback), with their schema version checked, and an unreadable one reported, never fatal."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_selfheal.core.incident import build_incident
from airflow_selfheal.hooks.airflow_api import AirflowApiClient
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.operators.backstop import backstop, recorded_tries
from airflow_selfheal.records.incidents import IncidentStore, occurrence_name, occurrence_record
from dev.s3 import overwrite
from tests.support.backstop import OOM_LOG, SINCE, FakeApiServer, task_instance


@pytest.fixture
def incidents(artifact_store: ArtifactStore) -> IncidentStore:
    """Each test runs on a file:// root and on an s3:// root."""
    return IncidentStore(artifact_store)


def record(incidents: IncidentStore, item: dict[str, Any], *, error: str = "boom") -> str:
    """What the failure callback stores for the try of ``item``; the occurrence's path."""
    incident = build_incident(
        pipeline=item["dag_id"],
        run_id=item["dag_run_id"],
        task_id=item["task_id"],
        map_index=item["map_index"],
        try_number=item["try_number"],
        nodes=(),
        error=error,
        failed_at=datetime.now(timezone.utc),
    )
    incidents.save(incident, occurrence_record(incident, source="callback"))
    return f"incidents/{incident.incident_id}/occurrences/{occurrence_name(incident)}"


def identity(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["dag_id"], item["dag_run_id"], item["task_id"], item["map_index"], item["try_number"])


class TestRecordedTries:
    def test_the_tries_with_an_occurrence(self, incidents: IncidentStore) -> None:
        recorded, second_try = task_instance(), task_instance(try_number=2)
        # Same run id, task id and try in another DAG: the same occurrence name, but not the same try.
        other_dag = task_instance(dag_id="shop_copy")
        mapped = task_instance(map_index=3)
        record(incidents, recorded)
        record(incidents, mapped, error="other failure")  # another incident folder
        assert recorded_tries(incidents, [recorded, second_try, other_dag, mapped]) == {
            identity(recorded),
            identity(mapped),
        }

    def test_nothing_stored_yet(self, incidents: IncidentStore) -> None:
        assert recorded_tries(incidents, [task_instance()]) == set()
        assert recorded_tries(incidents, []) == set()

    def test_a_record_of_0_1_0_without_a_version_is_read(self, incidents: IncidentStore) -> None:
        item = task_instance()
        relative = record(incidents, item)
        old = {
            key: value
            for key, value in incidents.store.read_json(relative).items()
            if key != "schema_version"
        }
        overwrite(incidents.store, relative, json.dumps(old).encode())
        assert recorded_tries(incidents, [item]) == {identity(item)}

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param(b'{"pipeline": "sh', "is not valid JSON", id="truncated"),
            pytest.param(b"[1, 2]", "is not an occurrence object", id="not-an-object"),
            pytest.param(b'{"schema_version": 99}', "written with occurrence schema version 99", id="newer"),
        ],
    )
    def test_an_unreadable_record_counts_as_recorded_and_is_reported(
        self, incidents: IncidentStore, caplog: pytest.LogCaptureFixture, content: bytes, problem: str
    ) -> None:
        item, other = task_instance(), task_instance(task_id="shop.stg_customers_run")
        relative = record(incidents, item)
        record(incidents, other)
        overwrite(incidents.store, relative, content)

        with caplog.at_level(logging.WARNING, logger="airflow_selfheal.operators.backstop"):
            assert recorded_tries(incidents, [item, other]) == {identity(item), identity(other)}

        (warning,) = caplog.records
        assert incidents.store.url(relative) in warning.getMessage()
        assert problem in warning.getMessage()

    def test_once_moved_aside_the_try_is_reported(self, incidents: IncidentStore) -> None:
        item = task_instance()
        relative = record(incidents, item)
        overwrite(incidents.store, relative, b"{")
        incidents.store.quarantine(relative)
        assert recorded_tries(incidents, [item]) == set()


class TestBackstopOnEachRoot:
    def test_reports_an_orphan_once(self, api: FakeApiServer, incidents: IncidentStore) -> None:
        killed = task_instance()
        api.task_instances = [killed]
        api.logs = {killed["task_id"]: OOM_LOG}
        client = AirflowApiClient(api.url)

        summary = backstop(client, since=SINCE, dag_ids=["shop"], store=incidents, repair_dag_id="repair")

        (entry,) = summary["incidents"]
        assert (entry["new_incident"], entry["errors"], entry["failure_class"]) == (True, [], "resource")
        stored = incidents.get(entry["incident_id"])
        (occurrence,) = incidents.occurrences(stored.incident_id)
        assert (occurrence["source"], occurrence["task_id"]) == ("backstop", killed["task_id"])
        conf = api.runs[entry["dispatch"]["run_id"]]["conf"]
        assert conf["incident_path"] == f"incidents/{stored.incident_id}/incident.json"

        again = backstop(client, since=SINCE, dag_ids=["shop"], store=incidents, repair_dag_id="repair")
        assert (again["orphans"], len(api.runs)) == (0, 1)
