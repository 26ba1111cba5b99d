"""The validate step's attempt loop, with real dbt in a real clone on a private embedded warehouse.

Attempt n+1 must receive attempt n's files and validation error and build *other* files; a proposer with
nothing new ends the loop at once, after one build, instead of building the same files again.

The proposers here are scripted stand-ins for an LLM proposer (the plug-in point ``RepairConfig.proposers``):
they return fixed plans, and record what they were asked. Everything else is real: the propose and validate
steps, the sandbox, ``dbt build`` against the clone, the artifacts root and the evidence published to it.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import pytest

from dev.loader import load_raw
from dev.scenarios import SCENARIOS
from dev.warehouse import running
from tests.support.demo import DEMO_PROJECT, dbt_build_prod
from tests.support.incidents import make_incident
from tests.support.runs import FakeRun

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_selfheal.core.fixes import Escalation, FixPlan
    from airflow_selfheal.core.repair.proposers import ProposalRequest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONN_ID = "selfheal_attempt_loop"
STG_ORDERS = "models/staging/stg_orders.sql"
WRONG = "    email_addr as customer_email,"  # not a column of the renamed table: the build fails
RIGHT = "    email_address as customer_email,"


class ScriptedProposer:
    """Proposes ``answers[n]`` for the request with n failed attempts (the last one when it runs out)."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name = name
        self.answers = answers
        self.requests: list[ProposalRequest] = []

    def propose(self, request: ProposalRequest) -> FixPlan | Escalation:
        from airflow_selfheal.core.fixes import FixPlan

        self.requests.append(request)
        line = self.answers[min(len(request.feedback), len(self.answers) - 1)]
        original = request.project_files[STG_ORDERS]
        return FixPlan(
            fix_type="column_rename",
            tier="review",
            rationale=f"read the renamed column ({line.strip()})",
            changes={STG_ORDERS: original.replace("    customer_email,", line)},
            guard_tests={},
            priority=1,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prod built and then broken by an upstream rename, a clone of it, and a copy of the project."""
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    with (
        running(tmp_path_factory.mktemp("attempt-loop-warehouse")) as warehouse,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri())
        with warehouse.connect() as conn:
            load_raw(conn)
        work = tmp_path_factory.mktemp("attempt-loop-prod")
        dbt_build_prod(warehouse, work)
        with warehouse.connect() as conn:
            SCENARIOS["rename_column"].apply(conn)
        hook = SnowflakeCloneHook(snowflake_conn_id=CONN_ID)
        clone = hook.clone_for_incident("DEMO", make_incident()["incident_id"])
        project = tmp_path_factory.mktemp("attempt-loop-project") / "project"
        shutil.copytree(DEMO_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
        try:
            yield {
                "warehouse": warehouse,
                "clone": clone,
                "project": project,
                "manifest": work / "target/manifest.json",
            }
        finally:
            hook.drop_clone(clone.clone_database)


def run_loop(stack: dict[str, Any], tmp_path: Path, proposer: ScriptedProposer) -> tuple[Any, FakeRun, Any]:
    from airflow_selfheal.core.contracts import CloneOutcome, TriageDecision
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.repair import RepairConfig
    from airflow_selfheal.repair.propose import propose_step
    from airflow_selfheal.repair.validate import validate_step

    config = RepairConfig(
        project_dir=str(stack["project"]),
        manifest_path=str(stack["manifest"]),
        snowflake_conn_id=CONN_ID,
        prod_database="DEMO",
        sandbox_root=str(tmp_path / "sandboxes"),
        max_attempts=3,
        proposers=[proposer],
        dbt_timeout=900,
    )
    incident = make_incident()
    decided = TriageDecision(
        incident=incident,
        triage={"failure_class": "missing_column"},
        action="repair",
        branch="clone",
        select="stg_orders+",
    )
    fake = FakeRun(store=ArtifactStore(root=f"file://{tmp_path / 'artifacts'}", conn_id=""))
    fake.xcoms[("triage", None)] = decided.dump()
    fake.xcoms[("clone", None)] = CloneOutcome(**stack["clone"].to_dict()).dump()
    fake.xcoms[("propose", "plan")] = propose_step(config, fake.context("propose")).dump()
    outcome = validate_step(config, fake.context("validate"))
    return outcome, fake, config


def test_attempt_two_gets_attempt_ones_error_and_builds_other_files(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    proposer = ScriptedProposer("scripted", [WRONG, RIGHT])
    outcome, fake, config = run_loop(stack, tmp_path, proposer)

    assert outcome.status == "proposal", (outcome.reason, outcome.logs_excerpt)
    assert [(item.attempt, item.success) for item in outcome.attempts] == [
        ("attempt-1", False),
        ("attempt-2", True),
    ]
    first, second = outcome.attempts
    assert first.files_hash != second.files_hash
    assert "EMAIL_ADDR" in (first.error or "").upper()
    # The second request carried the first attempt's files and dbt's error about them.
    (feedback,) = proposer.requests[-1].feedback
    assert feedback.attempt == 1
    assert WRONG in feedback.changes[STG_ORDERS]
    assert "EMAIL_ADDR" in feedback.error.upper()
    assert f"+{RIGHT}" in outcome.diff
    # Both plans are stored once, and the failed attempt's evidence outlives the sandbox.
    store = fake.store
    incident_id = make_incident()["incident_id"]
    plans = store.list(f"incidents/{incident_id}/plans/{fake.context().attempt_key}")
    assert plans == ["attempt-1.json", "attempt-2.json"]
    proposals = f"incidents/{incident_id}/proposals/{fake.context().attempt_key}"
    failed_prefix = f"{proposals}/{first.files_hash[:12]}"
    assert store.exists(f"{failed_prefix}/sandbox.json")
    assert "EMAIL_ADDR" in store.read_text(f"{failed_prefix}/validation/attempt-1/dbt.log").upper()
    assert outcome.evidence_prefix == f"{proposals}/{second.files_hash[:12]}"
    assert not (config.sandboxes / fake.context().attempt_key).exists()  # removed in the finally


def test_a_proposer_with_nothing_new_escalates_after_one_build(stack: dict[str, Any], tmp_path: Path) -> None:
    proposer = ScriptedProposer("stubborn", [WRONG])
    outcome, fake, config = run_loop(stack, tmp_path, proposer)

    assert outcome.status == "escalate"
    assert [item.attempt for item in outcome.attempts] == ["attempt-1"]  # built once, not twice
    assert "no proposer has anything new" in str(outcome.reason)
    assert "repeats attempt 1" in str(outcome.reason)
    assert "EMAIL_ADDR" in str(outcome.reason).upper()
    assert len(proposer.requests) == 2  # asked again with the error, answered the same files
    assert outcome.evidence_prefix is not None
    assert fake.store.exists(f"{outcome.evidence_prefix}/validation/attempt-1/dbt.log")
    assert not (config.sandboxes / fake.context().attempt_key).exists()
