"""The validate step refuses a plan the floors refuse, before any file is written or dbt is run; it escalates why."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.contracts import CloneOutcome, ProposedPlan, TriageDecision
from airflow_selfheal.core.fixes import FixPlan
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.repair import RepairConfig
from airflow_selfheal.repair.validate import validate_step
from tests.support.incidents import make_incident
from tests.support.runs import FakeRun

if TYPE_CHECKING:
    from pathlib import Path

MODEL = "select order_id from {{ source('raw', 'orders') }}\n"
STG = "models/stg_orders.sql"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (root / STG).write_text(MODEL)
    return root


@pytest.fixture
def no_build(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """dbt must not run for a refused plan: a build here fails the test."""
    from airflow_selfheal.hooks.dbt import DbtValidationHook

    calls: list[Any] = []

    def build(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise AssertionError("a refused plan was built")

    monkeypatch.setattr(DbtValidationHook, "build", build)
    return calls


def _validate(tmp_path: Path, project: Path, changes: dict[str, str], allowed: list[str]) -> Any:
    config = RepairConfig(
        project_dir=str(project),
        snowflake_conn_id="selfheal_unit",
        prod_database="DEMO",
        sandbox_root=str(tmp_path / "sandboxes"),
    )
    fake = FakeRun(store=ArtifactStore(root=f"file://{tmp_path / 'artifacts'}", conn_id=""))
    decided = TriageDecision(
        incident=make_incident(),
        triage={"failure_class": "missing_column"},
        action="repair",
        branch="clone",
        select="stg_orders+",
    )
    plan = FixPlan(
        fix_type="column_rename", tier="review", rationale="r", changes=changes, guard_tests={}, priority=1
    )
    path = f"incidents/{decided.incident_id}/plans/try/attempt-1.json"
    proposed = ProposedPlan(
        kind="fix_plan",
        plan={**plan.to_dict(), "proposer": "llm"},
        plan_path=path,
        select="stg_orders+",
        allowed_paths=allowed,
        base_sha=None,
    )
    fake.store.create_json(path, proposed.dump())
    fake.xcoms[("triage", None)] = decided.dump()
    fake.xcoms[("clone", None)] = CloneOutcome(clone_database="DEMO_CLONE", source_database="DEMO").dump()
    fake.xcoms[("propose", "plan")] = proposed.dump()
    return validate_step(config, fake.context("validate"))


@pytest.mark.parametrize(
    ("changes", "allowed", "reason"),
    [
        pytest.param(
            {STG: "select 1\n"},
            [],
            "path 'models/stg_orders.sql' is outside the allowed paths: allowed_paths in .selfheal/rules.yml is "
            "empty, which allows no path",
            id="empty-allow-list-is-not-widened",
        ),
        pytest.param(
            {"profiles.yml": "shop: {}\n"},
            ["**"],
            "the writable floor refuses 'profiles.yml': a file named profiles.yml holds dbt's settings",
            id="profiles-under-star-star",
        ),
        pytest.param(
            {"models/.git/config": "[core]\n\thooksPath = /tmp\n"},
            ["models/**", "tests/selfheal_guard_*.sql"],
            "the writable floor refuses 'models/.git/config': it is inside a .git folder",
            id="nested-git",
        ),
        pytest.param(
            {STG: MODEL.replace("order_id", "order_id, {{ run_query('drop table raw.orders') }}")},
            ["models/**"],
            "the new models/stg_orders.sql gains Jinja delimiters the original did not have ('{{' x1, '}}' x1)",
            id="jinja-gained",
        ),
    ],
)
def test_a_refused_plan_escalates_without_a_build(
    tmp_path: Path,
    project: Path,
    no_build: list[Any],
    changes: dict[str, str],
    allowed: list[str],
    reason: str,
) -> None:
    before = {path: path.read_bytes() for path in project.rglob("*") if path.is_file()}
    outcome = _validate(tmp_path, project, changes, allowed)
    assert outcome.status == "escalate"
    assert outcome.reason.startswith(f"the column_rename plan of attempt 1 (llm) was not built: {reason}")
    assert outcome.attempts == []
    assert no_build == []
    assert {path: path.read_bytes() for path in project.rglob("*") if path.is_file()} == before
    assert not (tmp_path / "sandboxes").exists() or not any((tmp_path / "sandboxes").rglob("*.sql"))
