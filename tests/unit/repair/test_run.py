"""RunContext: per-run names, typed reads of earlier tasks' results, and the audit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.core.contracts import ContractError, TriageDecision
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.records.audit import AuditLog
from tests.support.incidents import make_incident
from tests.support.runs import FakeRun

if TYPE_CHECKING:
    from pathlib import Path


def test_names_are_per_run_and_try_and_path_safe(tmp_path: Path) -> None:
    run = FakeRun(store=ArtifactStore(root=f"file://{tmp_path}", conn_id=""), try_number=3).context()
    assert run.run_key == "manual__2026-12-03T10_00_00_00_00"
    assert run.attempt_key == "manual__2026-12-03T10_00_00_00_00-try3"
    assert run.scope("proposals") == "proposals/manual__2026-12-03T10_00_00_00_00"


def test_read_validates_the_contract(tmp_path: Path) -> None:
    decided = TriageDecision(
        incident=make_incident(), triage={}, action="repair", branch="clone", select="a+"
    )
    fake = FakeRun(store=ArtifactStore(root=f"file://{tmp_path}", conn_id=""))
    fake.xcoms[("triage", None)] = decided.dump()
    assert fake.context().read(TriageDecision, "triage") == decided
    fake.xcoms[("triage", None)] = {**decided.dump(), "branch": 3}
    with pytest.raises(
        ContractError, match=r"XCom of task triage in run .* is not a valid TriageDecision \(branch"
    ):
        fake.context().read(TriageDecision, "triage")
    assert fake.context().read_optional(TriageDecision, "retry") is None


def test_record_writes_the_audit_trail(tmp_path: Path) -> None:
    store = ArtifactStore(root=f"file://{tmp_path}", conn_id="")
    FakeRun(store=store).context().record("inc-0123456789abcdef", "clone", "succeeded", clone="C")
    entries = AuditLog("inc-0123456789abcdef", store).entries()
    assert [(entry["step"], entry["status"]) for entry in entries] == [("clone", "succeeded")]
