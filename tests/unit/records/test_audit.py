from __future__ import annotations

import argparse
import io
import json
import re
import threading
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.cli import output as cli_output
from airflow_selfheal.cli.audit import add_audit_commands, audit_show_text
from airflow_selfheal.core.schema import RecordVersionError
from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore
from airflow_selfheal.records.audit import IN_PROGRESS, AuditLog
from dev.s3 import overwrite

if TYPE_CHECKING:
    from pathlib import Path

INCIDENT = "inc-0123456789abcdef"
START = datetime(2025, 3, 1, 9, 30, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(artifact_store: ArtifactStore) -> ArtifactStore:
    """A fresh store: each test runs on a file:// root and on an s3:// root."""
    return artifact_store


class Clock:
    """Returns START plus the given offsets in seconds, one per call."""

    def __init__(self, *offsets: float) -> None:
        self.times = iter(START + timedelta(seconds=offset) for offset in offsets)

    def __call__(self) -> datetime:
        return next(self.times)


def repair_run(store: ArtifactStore) -> AuditLog:
    audit = AuditLog(INCIDENT, store, clock=Clock(0, 2, 3, 43, 44, 80, 95, 140, 445, 446, 470, 471))
    audit.record("triage", "succeeded", classification="column_renamed", fixable=True)
    audit.record("clone", "started")
    audit.record("clone", "succeeded", clone="SHOP__SELFHEAL_0123456789AB", tables=4)
    audit.record("validate", "failed", attempt=1, error="Binder Error: column ORDER_TS not found")
    audit.record("validate", "succeeded", attempt=2)
    audit.record("page", "sent", pagerduty="triggered", slack="posted")
    audit.record("approve", "waiting")
    audit.record("approve", "approved", approved_by="jane")
    audit.record("promote", "succeeded", merge_commit="4f1c2ab")
    audit.record("rerun", "started")
    audit.record("rerun", "succeeded", selector="stg_orders+")
    audit.finish("resolved")
    return audit


class TestRecord:
    def test_entries_come_back_in_order_with_named_files(self, store: ArtifactStore) -> None:
        audit = repair_run(store)

        entries = audit.entries()

        assert [entry["seq"] for entry in entries] == list(range(1, 13))
        assert [(entry["step"], entry["status"]) for entry in entries][:3] == [
            ("triage", "succeeded"),
            ("clone", "started"),
            ("clone", "succeeded"),
        ]
        assert entries[0]["at"] == "2025-03-01T09:30:00+00:00"
        assert store.list(f"audit/{INCIDENT}")[0] == "000001-20250301T093000000000Z-triage.json"

    def test_a_second_writer_appends_after_the_first(self, store: ArtifactStore) -> None:
        AuditLog(INCIDENT, store).record("triage", "succeeded")
        AuditLog(INCIDENT, store).record("clone", "started")

        assert [(entry["seq"], entry["step"]) for entry in AuditLog(INCIDENT, store).entries()] == [
            (1, "triage"),
            (2, "clone"),
        ]

    def test_concurrent_writers_never_overwrite_or_share_a_number(self, store: ArtifactStore) -> None:
        writers, records = 6, 8
        barrier = threading.Barrier(writers)
        errors: list[BaseException] = []

        def write(worker: int) -> None:
            audit = AuditLog(INCIDENT, store)  # one instance per worker, as on separate machines
            try:
                barrier.wait()
                for index in range(records):
                    audit.record("validate", "succeeded", worker=worker, index=index)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(worker,)) for worker in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        entries = AuditLog(INCIDENT, store).entries()
        assert errors == []
        assert [entry["seq"] for entry in entries] == list(range(1, writers * records + 1))
        assert sorted((e["details"]["worker"], e["details"]["index"]) for e in entries) == [
            (worker, index) for worker in range(writers) for index in range(records)
        ]

    def test_secrets_in_details_are_redacted_on_disk(self, store: ArtifactStore) -> None:
        audit = AuditLog(INCIDENT, store)

        entry = audit.record(
            "clone",
            "failed",
            password="hunter2-secret",
            error="cannot connect to snowflake://etl:s3cr3tpw@acct/SHOP",
            nested={"headers": {"Authorization": "Bearer abc.def.ghi"}},
        )

        assert entry["details"]["password"] == "***REDACTED***"
        assert entry["details"]["error"] == "cannot connect to snowflake://etl:***REDACTED***@acct/SHOP"
        assert entry["details"]["nested"]["headers"]["Authorization"] == "***REDACTED***"
        folder = f"audit/{INCIDENT}"
        on_disk = "".join(store.read_text(f"{folder}/{name}") for name in store.list(folder))
        assert "hunter2-secret" not in on_disk
        assert "s3cr3tpw" not in on_disk
        assert "abc.def.ghi" not in on_disk
        assert audit.entries()[0]["details"] == entry["details"]

    @pytest.mark.parametrize(
        ("step", "status", "message"),
        [
            pytest.param("../escape", "ok", "step", id="step-traversal"),
            pytest.param("", "ok", "step", id="step-empty"),
            pytest.param("clone", " ", "status", id="status-empty"),
        ],
    )
    def test_bad_step_or_status_is_refused(
        self, store: ArtifactStore, step: str, status: str, message: str
    ) -> None:
        audit = AuditLog(INCIDENT, store)

        with pytest.raises(ValueError, match=message):
            audit.record(step, status)

        assert audit.entries() == []

    def test_bad_incident_id_is_refused(self, store: ArtifactStore) -> None:
        with pytest.raises(ValueError, match="incident id"):
            AuditLog("../inc", store)

    def test_corrupt_record_names_file_and_recovery(self, store: ArtifactStore) -> None:
        audit = AuditLog(INCIDENT, store, clock=Clock(0))
        audit.record("triage", "succeeded")
        name = store.list(f"audit/{INCIDENT}")[0]
        overwrite(store, f"audit/{INCIDENT}/{name}", b"{truncated")

        with pytest.raises(ArtifactCorruptError, match=rf"{name} is not valid JSON.*quarantine"):
            audit.entries()

    def test_records_and_claims_carry_their_schema_version(self, store: ArtifactStore) -> None:
        entry = AuditLog(INCIDENT, store, clock=Clock(0)).record("triage", "succeeded")
        name = store.list(f"audit/{INCIDENT}")[0]

        assert store.read_json(f"audit/{INCIDENT}/{name}") == {**entry, "schema_version": 1}
        assert store.read_json(f"audit/{INCIDENT}/seq/000001.json")["schema_version"] == 1
        assert AuditLog(INCIDENT, store).entries() == [entry]

    def test_a_record_of_a_newer_release_is_refused_by_name(self, store: ArtifactStore) -> None:
        audit = AuditLog(INCIDENT, store, clock=Clock(0, 1))
        audit.record("triage", "succeeded")
        future = {
            "incident_id": INCIDENT,
            "seq": 2,
            "step": "clone",
            "status": "ok",
            "at": "x",
            "schema_version": 7,
        }
        name = "000002-20250301T093001000000Z-clone.json"
        store.create_json(f"audit/{INCIDENT}/{name}", future)

        with pytest.raises(
            RecordVersionError,
            match=rf"{name} was written with audit_entry schema version 7.*[Uu]pgrade airflow-selfheal",
        ):
            audit.entries()

    def test_a_record_missing_its_fields_is_corrupt(self, store: ArtifactStore) -> None:
        store.create_json(f"audit/{INCIDENT}/000001-20250301T093000000000Z-triage.json", {"seq": 1})

        with pytest.raises(
            ArtifactCorruptError, match=r"triage\.json is not an audit record .*'step'.*quarantine"
        ):
            AuditLog(INCIDENT, store).entries()

    @pytest.mark.parametrize(
        ("fields", "problem"),
        [
            pytest.param(
                {"at": "yesterday"}, "its 'at' 'yesterday' is not an ISO-8601 time with a zone", id="time"
            ),
            pytest.param(
                {"at": "2025-03-01T09:30:00"},
                "its 'at' '2025-03-01T09:30:00' is not an ISO-8601 time with a zone",
                id="naive-time",
            ),
            pytest.param({"details": [1]}, "its 'details' is not an object", id="details"),
            pytest.param({"seq": True}, "its 'seq' is missing or invalid", id="seq"),
        ],
    )
    def test_a_record_with_a_field_of_the_wrong_kind_is_corrupt(
        self, store: ArtifactStore, fields: dict[str, object], problem: str
    ) -> None:
        # Before, these raised TypeError or AttributeError from the summary, with no file named.
        entry = {"seq": 1, "step": "triage", "status": "done", "at": "2025-03-01T09:30:00+00:00", **fields}
        store.create_json(f"audit/{INCIDENT}/000001-20250301T093000000000Z-triage.json", entry)

        with pytest.raises(
            ArtifactCorruptError, match=rf"triage\.json is not an audit record \({re.escape(problem)}"
        ):
            AuditLog(INCIDENT, store).summary()


class TestSummary:
    def test_outcome_approver_and_timings(self, store: ArtifactStore) -> None:
        summary = repair_run(store).summary()

        assert summary["outcome"] == "resolved"
        assert summary["approved_by"] == "jane"
        assert summary["started_at"] == "2025-03-01T09:30:00+00:00"
        assert summary["ended_at"] == "2025-03-01T09:37:51+00:00"
        assert summary["duration_seconds"] == 471.0
        assert summary["records"] == 12
        steps = {step["step"]: step for step in summary["steps"]}
        assert list(steps) == [
            "triage",
            "clone",
            "validate",
            "page",
            "approve",
            "promote",
            "rerun",
            "outcome",
        ]
        assert steps["validate"] == {
            "step": "validate",
            "status": "succeeded",
            "first_at": "2025-03-01T09:30:43+00:00",
            "last_at": "2025-03-01T09:30:44+00:00",
            "duration_seconds": 1.0,
            "records": 2,
        }
        assert steps["approve"]["duration_seconds"] == 45.0

    def test_unfinished_run_is_in_progress(self, store: ArtifactStore) -> None:
        audit = AuditLog(INCIDENT, store, clock=Clock(0, 5))
        audit.record("triage", "succeeded")
        audit.record("approve", "waiting")

        summary = audit.summary()

        assert (summary["outcome"], summary["approved_by"], summary["duration_seconds"]) == (
            IN_PROGRESS,
            None,
            5.0,
        )

    def test_no_records(self, store: ArtifactStore) -> None:
        summary = AuditLog(INCIDENT, store).summary()

        assert (summary["records"], summary["steps"], summary["started_at"]) == (0, [], None)


GOLDEN = """\
inc-0123456789abcdef: resolved after 7m51s, approved by jane
  2025-03-01 09:30:00Z  +0s        triage    succeeded        0s  classification=column_renamed fixable=true
  2025-03-01 09:30:02Z  +2s        clone     succeeded        1s  x2  clone=SHOP__SELFHEAL_0123456789AB tables=4
  2025-03-01 09:30:43Z  +43s       validate  succeeded        1s  x2  attempt=2
  2025-03-01 09:31:20Z  +1m20s     page      sent             0s  pagerduty=triggered slack=posted
  2025-03-01 09:31:35Z  +1m35s     approve   approved        45s  x2  approved_by=jane
  2025-03-01 09:37:25Z  +7m25s     promote   succeeded        0s  merge_commit=4f1c2ab
  2025-03-01 09:37:26Z  +7m26s     rerun     succeeded       24s  x2  selector=stg_orders+
  2025-03-01 09:37:51Z  +7m51s     outcome   resolved         0s"""


class TestRender:
    def test_timeline_golden(self, store: ArtifactStore) -> None:
        assert repair_run(store).render_text() == GOLDEN

    def test_long_details_are_shortened(self, store: ArtifactStore) -> None:
        audit = AuditLog(INCIDENT, store, clock=Clock(0))
        audit.record("validate", "failed", error="x" * 500)

        line = audit.render_text().splitlines()[1]

        assert line.endswith("…")
        assert len(line.split("  failed  ")[1].strip()) < 100

    def test_no_records(self, store: ArtifactStore) -> None:
        assert AuditLog(INCIDENT, store).render_text() == f"{INCIDENT}: no audit records"


class TestAuditShowCommand:
    @pytest.fixture
    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="airflow-selfheal")
        add_audit_commands(parser.add_subparsers(dest="group", required=True))
        return parser

    @pytest.fixture
    def configured_store(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
        monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", f"file://{tmp_path}/configured")
        return ArtifactStore()

    def run(self, parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch, *argv: str) -> str:
        out = io.StringIO()
        monkeypatch.setattr(cli_output, "result_stream", out)
        args = parser.parse_args(argv)
        assert args.func(args) == 0
        return out.getvalue()

    def test_show_prints_the_timeline(
        self,
        parser: argparse.ArgumentParser,
        configured_store: ArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        repair_run(configured_store)

        assert self.run(parser, monkeypatch, "audit", "show", INCIDENT) == GOLDEN + "\n"

    def test_show_json(
        self,
        parser: argparse.ArgumentParser,
        configured_store: ArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        repair_run(configured_store)

        shown = json.loads(self.run(parser, monkeypatch, "audit", "show", INCIDENT, "--json"))

        assert shown["summary"]["outcome"] == "resolved"
        assert len(shown["entries"]) == 12
        assert shown["entries"][-1]["step"] == "outcome"

    def test_unknown_incident_is_a_lookup_error(self, file_store: ArtifactStore) -> None:
        with pytest.raises(LookupError, match=f"no audit records for {INCIDENT}.*artifacts_root"):
            audit_show_text(INCIDENT, store=file_store)


def test_render_text_keeps_each_step_on_one_line(store: ArtifactStore) -> None:
    """dbt logs carry colours and line breaks; the trail stays one row per step."""
    audit = AuditLog("inc-1", store)
    audit.record("rerun", "succeeded", logs_excerpt="\x1b[0m11:13:59  10 of 26 PASS\nunique_stg\r\n")
    rows = audit.render_text().splitlines()
    assert len(rows) == 2, rows
    assert "logs_excerpt=11:13:59 10 of 26 PASS unique_stg" in rows[1]
    assert "\x1b" not in rows[1]


def test_a_step_audited_once_at_its_end_keeps_its_duration(store: ArtifactStore) -> None:
    audit = AuditLog("inc-1", store)
    audit.record("validate", "proposal", seconds=19.4)
    audit.record("page", "sent", seconds=True)  # not a number: ignored
    steps = {step["step"]: step for step in audit.summary()["steps"]}
    assert steps["validate"]["duration_seconds"] == 19.4
    assert steps["page"]["duration_seconds"] == 0.0
    assert audit.render_text().splitlines()[1].split()[5] == "19s"
