"""The incident store on the artifacts root, and the ``incidents`` and ``triage`` CLI commands."""

from __future__ import annotations

import argparse
import copy
import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.cli.incidents import (
    add_incident_commands,
    cmd_incidents_list,
    cmd_incidents_show,
    cmd_triage,
)
from airflow_selfheal.core.incident import DbtNodeRef, Incident, build_incident
from airflow_selfheal.core.schema import RecordVersionError
from airflow_selfheal.core.triage import classify
from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore
from airflow_selfheal.records.incidents import (
    IncidentNotFoundError,
    IncidentStore,
    occurrence_name,
    safe_segment,
)
from dev.failure_contexts import (
    FAILED_TEST_RESULT,
    REAL_RUN_RESULTS,
    RENAME,
    STG_ORDERS_ERROR,
)
from dev.s3 import overwrite

if TYPE_CHECKING:
    from pathlib import Path

# A passing model, in the same dbt 1.11 result format as the recorded run of ``dev/failure_contexts.py``.
PASSING_RESULT: dict[str, Any] = {
    "status": "success",
    "timing": [],
    "thread_id": "Thread-1 (worker)",
    "execution_time": 0.2,
    "adapter_response": {"_message": "SUCCESS 1", "code": "SUCCESS", "rows_affected": 1},
    "message": "SUCCESS 1",
    "failures": None,
    "unique_id": "model.selfheal_demo.stg_customers",
    "compiled": True,
    "compiled_code": "select 1",
    "relation_name": "DEMO.ANALYTICS.stg_customers",
    "batch_results": None,
}

# The console log of that recorded run (colours included).
REAL_DBT_LOG = (
    "\x1b[0m08:23:10  Running with dbt=1.11.16\n"
    "\x1b[0m08:23:13  Registered adapter: snowflake=1.12.3\n"
    "\x1b[0m08:23:17  Found 11 models, 54 data tests, 5 sources, 563 macros\n"
    "\x1b[0m08:23:17  1 of 1 START sql view model ANALYTICS.stg_orders ............................... [RUN]\n"
    "\x1b[0m08:23:17  1 of 1 ERROR creating sql view model ANALYTICS.stg_orders ...................... "
    "[\x1b[31mERROR\x1b[0m in 0.08s]\n"
    "\x1b[0m08:23:17  \x1b[31mCompleted with 1 error, 0 partial successes, and 0 warnings:\x1b[0m\n"
    "\x1b[0m08:23:17  \x1b[31mFailure in model stg_orders (models/staging/stg_orders.sql)\x1b[0m\n"
    "\x1b[0m08:23:17    " + STG_ORDERS_ERROR + "\n"
    "\x1b[0m08:23:17    compiled code at target/compiled/selfheal_demo/models/staging/stg_orders.sql\n"
    "\x1b[0m08:23:17  Done. PASS=0 WARN=0 ERROR=1 SKIP=0 NO-OP=0 TOTAL=1\n"
)

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=timezone.utc)
STG_ORDERS = DbtNodeRef(
    "model.selfheal_demo.stg_orders", "model", "stg_orders", "models/staging/stg_orders.sql"
)


def make_incident(
    *,
    run_id: str = "manual__2026-03-01T06:00:00+00:00",
    try_number: int = 1,
    error: str = STG_ORDERS_ERROR,
    failed_at: datetime = T0,
    pipeline: str = "shop_pipeline",
) -> Incident:
    incident = build_incident(
        pipeline=pipeline,
        run_id=run_id,
        task_id="shop.stg_orders.run",
        try_number=try_number,
        nodes=[STG_ORDERS],
        error=error,
        failed_at=failed_at,
        environment="prod",
    )
    return incident.with_triage(classify(incident.error, resource_type="model").to_dict())


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """The configured artifacts root, pointed at a temp folder for this test."""
    root = tmp_path / "artifacts"
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(root))
    return ArtifactStore()


class TestIncidentStore:
    @pytest.fixture
    def artifacts(self, artifact_store: ArtifactStore) -> ArtifactStore:
        """Each test of the store runs on a file:// root and on an s3:// root."""
        return artifact_store

    def test_first_occurrence_creates_incident_and_repeats_add_occurrences(
        self, artifacts: ArtifactStore
    ) -> None:
        incidents = IncidentStore(artifacts)
        first = make_incident()
        retry = make_incident(try_number=2, failed_at=T0 + timedelta(minutes=5))
        rerun = make_incident(run_id="manual__2026-03-02T06:00:00+00:00", failed_at=T0 + timedelta(days=1))
        assert first.incident_id == retry.incident_id == rerun.incident_id

        assert incidents.save(first) is True
        assert incidents.save(retry) is False
        assert incidents.save(rerun) is False

        assert incidents.get(first.incident_id) == first
        occurrences = incidents.occurrences(first.incident_id)
        assert [(o["run_id"], o["try_number"]) for o in occurrences] == [
            ("manual__2026-03-01T06:00:00+00:00", 1),
            ("manual__2026-03-01T06:00:00+00:00", 2),
            ("manual__2026-03-02T06:00:00+00:00", 1),
        ]
        assert artifacts.exists(f"incidents/{first.incident_id}/incident.json")
        assert [incident.incident_id for incident in incidents.list()] == [first.incident_id]

    def test_same_try_recorded_twice_keeps_the_first_record(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident, {"note": "first"})
        incidents.save(incident, {"note": "second"})
        assert incidents.occurrences(incident.incident_id) == [{"note": "first"}]

    def test_occurrence_file_is_named_by_run_task_and_try(self) -> None:
        name = occurrence_name(make_incident(try_number=3))
        assert name == f"{safe_segment('manual__2026-03-01T06:00:00+00:00')}__shop.stg_orders.run__3.json"
        assert name.startswith("manual__2026-03-01T06_00_00_00_00-")

    def test_list_is_newest_first(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        old = make_incident(pipeline="a", failed_at=T0)
        new = make_incident(pipeline="b", failed_at=T0 + timedelta(hours=2))
        middle = make_incident(pipeline="c", failed_at=T0 + timedelta(hours=1))
        for incident in (old, new, middle):
            incidents.save(incident)
        assert [incident.pipeline for incident in incidents.list()] == ["b", "c", "a"]

    def test_empty_store_lists_nothing(self, artifacts: ArtifactStore) -> None:
        assert IncidentStore(artifacts).list() == []
        assert IncidentStore(artifacts).occurrences("inc-0123456789abcdef") == []

    def test_corrupt_incident_names_the_file(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident)
        overwrite(artifacts, f"incidents/{incident.incident_id}/incident.json", b'{"incident_id": ')
        with pytest.raises(
            ArtifactCorruptError, match=rf"{incident.incident_id}/incident\.json is not valid JSON"
        ):
            incidents.get(incident.incident_id)
        with pytest.raises(ArtifactCorruptError, match="quarantine"):
            incidents.list()

    def test_json_that_is_not_an_incident_names_the_file_and_field(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident)
        broken = incident.to_dict()
        del broken["fingerprint"]
        overwrite(artifacts, f"incidents/{incident.incident_id}/incident.json", json.dumps(broken).encode())
        with pytest.raises(ArtifactCorruptError, match=r"incident\.json is not an incident .*'fingerprint'"):
            incidents.get(incident.incident_id)

    def test_a_folder_in_place_of_the_incident_is_named(self, tmp_path: Path) -> None:
        # Before, `incidents show` said there was no such incident.
        store = ArtifactStore(root=str(tmp_path), conn_id="")
        (tmp_path / "incidents" / "inc-0123456789abcdef" / "incident.json").mkdir(parents=True)
        with pytest.raises(
            ArtifactCorruptError, match=r"incident\.json is a folder where a record should be"
        ):
            IncidentStore(store).get("inc-0123456789abcdef")

    def test_corrupt_occurrence_names_the_file(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident)
        folder = f"incidents/{incident.incident_id}/occurrences"
        overwrite(artifacts, f"{folder}/{artifacts.list(folder)[0]}", b"[1, 2")
        with pytest.raises(ArtifactCorruptError, match=r"occurrences/manual__.*\.json is not valid JSON"):
            incidents.occurrences(incident.incident_id)

    def test_records_carry_their_schema_version(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident)
        folder = f"incidents/{incident.incident_id}"

        assert artifacts.read_json(f"{folder}/incident.json") == {**incident.to_dict(), "schema_version": 1}
        occurrence = artifacts.read_json(f"{folder}/occurrences/{occurrence_name(incident)}")
        assert occurrence["schema_version"] == 1
        assert "schema_version" not in incidents.occurrences(incident.incident_id)[0]
        assert incidents.get(incident.incident_id) == incident

    def test_an_incident_of_a_newer_release_is_refused_by_name(self, artifacts: ArtifactStore) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        relative = f"incidents/{incident.incident_id}/incident.json"
        artifacts.create_json(relative, {**incident.to_dict(), "schema_version": 2, "new_field": [1]})

        with pytest.raises(RecordVersionError) as excinfo:
            incidents.get(incident.incident_id)
        message = str(excinfo.value)
        assert artifacts.url(relative) in message
        assert "schema version 2" in message
        assert "Upgrade airflow-selfheal" in message
        with pytest.raises(RecordVersionError):
            incidents.list()

    def test_a_malformed_schema_version_is_corrupt(self, artifacts: ArtifactStore) -> None:
        incident = make_incident()
        relative = f"incidents/{incident.incident_id}/incident.json"
        artifacts.create_json(relative, {**incident.to_dict(), "schema_version": "two"})

        with pytest.raises(
            ArtifactCorruptError, match=r"incident\.json is not an incident .*invalid schema_version"
        ):
            IncidentStore(artifacts).get(incident.incident_id)

    @pytest.mark.parametrize(
        "incident_id",
        [
            pytest.param("inc-ffffffffffffffff", id="unknown"),
            pytest.param("../../etc/passwd", id="path"),
            pytest.param("inc-XYZ", id="malformed"),
        ],
    )
    def test_unknown_or_malformed_id_is_not_found(self, artifacts: ArtifactStore, incident_id: str) -> None:
        with pytest.raises(IncidentNotFoundError, match="incidents list"):
            IncidentStore(artifacts).get(incident_id)


class TestSafeSegment:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            pytest.param("shop.stg_orders.run", "shop.stg_orders.run", id="already-safe"),
            pytest.param(None, "unknown", id="none"),
            pytest.param(3, "3", id="int"),
        ],
    )
    def test_safe_values_are_kept(self, value: object, expected: str) -> None:
        assert safe_segment(value) == expected

    def test_unsafe_values_stay_distinct(self) -> None:
        first = safe_segment("manual__2026-01-01T00:00:00+00:00")
        second = safe_segment("manual__2026-01-01T00_00_00_00_00")
        assert first != second
        assert first.startswith("manual__2026-01-01T00_00_00_00_00-")
        assert safe_segment("..") not in ("..", ".")


class TestTriageCommand:
    def _write(self, tmp_path: Path, name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content)
        return str(path)

    def test_real_run_results_as_text(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = self._write(tmp_path, "run_results.json", json.dumps(REAL_RUN_RESULTS))
        assert cmd_triage(argparse.Namespace(file=path, json=False)) == 0
        out = capsys.readouterr().out
        assert out.splitlines()[0] == "model.selfheal_demo.stg_orders (error)"
        assert "  class:       missing_column" in out
        assert "  action:      repair" in out
        assert "  identifiers: CUSTOMER_EMAIL" in out
        assert "Column CUSTOMER_EMAIL referenced by stg_orders no longer exists." in out

    def test_run_results_as_json_only_failed_results(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_results = copy.deepcopy(REAL_RUN_RESULTS)
        run_results["results"] = [PASSING_RESULT, *run_results["results"], FAILED_TEST_RESULT]
        path = self._write(tmp_path, "run_results.json", json.dumps(run_results))
        cmd_triage(argparse.Namespace(file=path, json=True))
        report = json.loads(capsys.readouterr().out)
        assert report["kind"] == "run_results"
        assert [(r["unique_id"], r["status"], r["failure_class"]) for r in report["results"]] == [
            ("model.selfheal_demo.stg_orders", "error", "missing_column"),
            ("test.selfheal_demo.not_null_stg_orders_customer_id.af79d5e4b5", "fail", "test_not_null"),
        ]

    def test_drift_report_names_the_rename_as_root_cause(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = self._write(tmp_path, "run_results.json", json.dumps(REAL_RUN_RESULTS))
        drift = self._write(
            tmp_path, "drift.json", json.dumps({"status": "drift_detected", "events": [RENAME]})
        )
        cmd_triage(argparse.Namespace(file=path, json=True, drift_report=drift))
        (result,) = json.loads(capsys.readouterr().out)["results"]
        assert result["root_cause"]["kind"] == "upstream_rename"
        assert result["root_cause"]["evidence"]["new_column"] == "EMAIL_ADDRESS"

    def test_real_log_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = self._write(tmp_path, "dbt.log", REAL_DBT_LOG)
        cmd_triage(argparse.Namespace(file=path, json=True))
        report = json.loads(capsys.readouterr().out)
        assert report["kind"] == "log"
        (result,) = report["results"]
        assert (result["failure_class"], result["error_code"]) == ("missing_column", "002043")
        assert result["identifiers"][0] == "CUSTOMER_EMAIL"

    def test_huge_log_reads_only_its_ends(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        progress = "".join(f"08:23:17  {n} of 9999 OK created sql view model x_{n}\n" for n in range(100_000))
        path = self._write(tmp_path, "big.log", progress + REAL_DBT_LOG)
        cmd_triage(argparse.Namespace(file=path, json=False))
        out = capsys.readouterr().out
        assert "  class:       missing_column" in out

    def test_run_results_without_failures(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = self._write(
            tmp_path, "run_results.json", json.dumps({**REAL_RUN_RESULTS, "results": [PASSING_RESULT]})
        )
        cmd_triage(argparse.Namespace(file=path))
        assert capsys.readouterr().out.strip().endswith("no failed results")

    def test_truncated_run_results_is_refused(self, tmp_path: Path) -> None:
        path = self._write(tmp_path, "run_results.json", json.dumps(REAL_RUN_RESULTS)[:200])
        with pytest.raises(ValueError, match=r"run_results\.json is not valid JSON"):
            cmd_triage(argparse.Namespace(file=path))

    def test_missing_file_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match=r"absent\.log does not exist: check the path"):
            cmd_triage(argparse.Namespace(file=str(tmp_path / "absent.log")))


class TestIncidentCommands:
    def test_list_and_show(self, artifacts: ArtifactStore, capsys: pytest.CaptureFixture[str]) -> None:
        incidents = IncidentStore(artifacts)
        incident = make_incident()
        incidents.save(incident)
        incidents.save(make_incident(try_number=2, failed_at=T0 + timedelta(minutes=1)))

        assert cmd_incidents_list(argparse.Namespace(json=False, limit=None)) == 0
        line = capsys.readouterr().out.strip()
        assert line.startswith(f"{incident.incident_id}  2026-03-01T06:00:00+00:00  prod  shop_pipeline")
        assert line.endswith("model.selfheal_demo.stg_orders  missing_column  x2")

        cmd_incidents_list(argparse.Namespace(json=True))
        (listed,) = json.loads(capsys.readouterr().out)
        assert (listed["incident_id"], listed["occurrences"]) == (incident.incident_id, 2)

        assert cmd_incidents_show(argparse.Namespace(incident_id=incident.incident_id, json=False)) == 0
        shown = capsys.readouterr().out
        assert "  class:       missing_column" in shown
        assert "  occurrences: 2" in shown
        assert 'Referenced column "CUSTOMER_EMAIL" not found' in shown

        cmd_incidents_show(argparse.Namespace(incident_id=incident.incident_id, json=True))
        record = json.loads(capsys.readouterr().out)
        assert Incident.from_dict(record["incident"]) == incident
        assert [o["try_number"] for o in record["occurrences"]] == [1, 2]

    def test_list_limit_and_empty(self, artifacts: ArtifactStore, capsys: pytest.CaptureFixture[str]) -> None:
        cmd_incidents_list(argparse.Namespace())
        assert capsys.readouterr().out.startswith("no incidents under ")
        for hour in range(3):
            IncidentStore(artifacts).save(
                make_incident(pipeline=f"p{hour}", failed_at=T0 + timedelta(hours=hour))
            )
        cmd_incidents_list(argparse.Namespace(limit=2))
        assert [line.split("  ")[3] for line in capsys.readouterr().out.splitlines()] == ["p2", "p1"]

    def test_show_unknown_incident(self, artifacts: ArtifactStore) -> None:
        with pytest.raises(IncidentNotFoundError, match="no incident inc-0000000000000000"):
            cmd_incidents_show(argparse.Namespace(incident_id="inc-0000000000000000"))

    def test_commands_are_registered(self) -> None:
        parser = argparse.ArgumentParser(prog="airflow-selfheal")
        add_incident_commands(parser.add_subparsers(dest="group", required=True))
        listing = parser.parse_args(["incidents", "list", "--limit", "5", "--json"])
        assert (listing.func, listing.limit, listing.json) == (cmd_incidents_list, 5, True)
        show = parser.parse_args(["incidents", "show", "inc-0123456789abcdef"])
        assert (show.func, show.incident_id) == (cmd_incidents_show, "inc-0123456789abcdef")
        triage = parser.parse_args(["triage", "run_results.json", "--drift-report", "d.json"])
        assert (triage.func, triage.file, triage.drift_report) == (cmd_triage, "run_results.json", "d.json")
