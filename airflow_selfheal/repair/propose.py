"""
The propose task: the first plan of the configured proposers (the deterministic rules first), stored write-once.

The plan names the project commit it was made on (``base_sha``), so the validate task builds on exactly that
commit wherever it runs, and the plan itself lives on the artifacts root under a name of its run and try.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import ProposedPlan, TriageDecision

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_selfheal.core.repair.proposers import ProposalRequest, Proposer
    from airflow_selfheal.core.rules import RulesConfig
    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext

#: File kinds a proposer reads (and may change) in the project.
PROJECT_FILE_SUFFIXES = (".sql", ".yml", ".yaml", ".md")
SKIPPED_TOP_LEVEL = frozenset({"target", "logs", "dbt_packages"})


def read_project_files(project_dir: Path) -> dict[str, str]:
    """The project's SQL and YAML files (and ``dbt_project.yml``), path relative to the project -> text."""
    files: dict[str, str] = {}
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if not path.is_file() or relative.parts[0] in SKIPPED_TOP_LEVEL or ".git" in relative.parts:
            continue
        if path.suffix in PROJECT_FILE_SUFFIXES:
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
    return files


def project_rules(project_dir: Path) -> RulesConfig:
    """The project's ``.selfheal/rules.yml`` (defaults when it has none)."""
    from airflow_selfheal.core.rules import RULES_FILE, load_rules

    rules_path = project_dir / RULES_FILE
    return load_rules(rules_path.read_text(encoding="utf-8") if rules_path.is_file() else None)


def proposers_of(config: RepairConfig) -> Sequence[Proposer]:
    """The configured proposers, or the deterministic rules alone."""
    from airflow_selfheal.core.repair.proposers import RuleProposer

    return tuple(config.proposers) or (RuleProposer(),)


def proposal_request(config: RepairConfig, decided: TriageDecision, project: Path) -> ProposalRequest:
    """What the proposers read: the incident and triage, the project's files and rules, and the manifest."""
    from airflow_selfheal.core.repair.proposers import ProposalRequest

    return ProposalRequest(
        incident=decided.incident,
        triage=decided.triage,
        project_files=read_project_files(project),
        manifest=json.loads(config.manifest.read_text(encoding="utf-8")),
        rules=project_rules(project),
    )


def plan_path(incident_id: str, attempt_key: str, attempt: int) -> str:
    """Where attempt ``attempt``'s plan of a run's try is stored (created once, never rewritten)."""
    return f"incidents/{incident_id}/plans/{attempt_key}/attempt-{attempt}.json"


def store_plan(run: RunContext, path: str, record: dict[str, Any]) -> None:
    """Create the plan record; an existing one with other content is a bug, not something to overwrite."""
    if not run.store.create_json(path, record) and run.store.read_json(path) != record:
        raise RuntimeError(
            f"{path} already holds another plan; plans are written once. Clear the task to run a new try."
        )


def propose_step(config: RepairConfig, run: RunContext) -> ProposedPlan:
    """
    The first proposer's plan for the incident, with what validation builds (audited).

    :return: a ``fix_plan`` (stored at ``plan_path``) or an ``escalation`` saying why there is none.
    """
    from airflow_selfheal.core.repair.proposers import ChosenPlan, next_plan
    from airflow_selfheal.core.repair.selectors import validation_selector
    from airflow_selfheal.hooks.git import head_sha

    decided = run.read(TriageDecision, "triage")
    project = Path(config.project_dir)
    request = proposal_request(config, decided, project)
    chosen = next_plan(proposers_of(config), request)
    if not isinstance(chosen, ChosenPlan):
        proposed = ProposedPlan(kind="escalation", plan=chosen.to_dict())
    else:
        plan = chosen.plan
        path = plan_path(decided.incident_id, run.attempt_key, 1)
        proposed = ProposedPlan(
            kind="fix_plan",
            plan={**plan.to_dict(), "proposer": chosen.proposer},
            plan_path=path,
            select=validation_selector(
                decided.incident, plan.changes, request.manifest, request.project_files
            ),
            allowed_paths=list(request.rules.allowed_paths),
            base_sha=head_sha(project),
        )
        store_plan(run, path, proposed.dump())
    run.record(
        decided.incident_id,
        "propose",
        proposed.kind,
        fix_type=proposed.fix_type,
        reason=proposed.reason or None,
    )
    return proposed
