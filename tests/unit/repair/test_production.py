"""The baseline acceptance's skip decisions; accepting a real snapshot is covered end to end on the warehouse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.contracts import TriageDecision
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.repair import RepairConfig
from airflow_selfheal.repair.production import accept_baseline_step
from tests.support.incidents import make_incident
from tests.support.runs import FakeRun

if TYPE_CHECKING:
    from pathlib import Path


def run_with(tmp_path: Path, triage: dict[str, Any]) -> FakeRun:
    store = ArtifactStore(root=f"file://{tmp_path}", conn_id="")
    incident = make_incident()
    decided = TriageDecision(incident=incident, triage=triage, action="repair", branch="clone", select="x+")
    return FakeRun(store=store, xcoms={("triage", None): decided.dump()})


def config(**overrides: Any) -> RepairConfig:
    return RepairConfig(project_dir="/p", snowflake_conn_id="wh", prod_database="DEMO", **overrides)


def test_needs_a_baseline_name(tmp_path: Path) -> None:
    run = run_with(tmp_path, {"root_cause": {"message": "x"}})
    result = accept_baseline_step(config(), run.context())
    assert (result.accepted, result.reason) == (False, "no baseline_name configured")


def test_only_after_drift(tmp_path: Path) -> None:
    run = run_with(tmp_path, {"root_cause": None})
    result = accept_baseline_step(config(baseline_name="shop_raw"), run.context())
    assert (result.accepted, result.reason) == (False, "the failure was not caused by source drift")


def test_a_missing_triage_is_a_clear_error(tmp_path: Path) -> None:
    from airflow_selfheal.core.contracts import ContractError

    run = FakeRun(store=ArtifactStore(root=f"file://{tmp_path}", conn_id=""))
    with pytest.raises(ContractError, match="XCom of task triage .* holds no TriageDecision"):
        accept_baseline_step(config(baseline_name="shop_raw"), run.context())
