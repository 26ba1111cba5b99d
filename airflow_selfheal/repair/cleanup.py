"""The cleanup task (a teardown that always runs): drop the clone, sweep orphans, write the audit outcome."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import (
    CloneOutcome,
    Escalation,
    ProdBuild,
    RepairOutcome,
    TriageDecision,
    ValidationOutcome,
)

if TYPE_CHECKING:
    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext

log = logging.getLogger(__name__)

#: The tasks that page a person, any one of which ran means the run escalated.
ESCALATION_TASKS = ("escalate", "escalate_unfixable", "escalate_invalid", "unanswered")


def run_results(run: RunContext) -> dict[str, Any]:
    """What :func:`~airflow_selfheal.core.repair.decisions.decide_outcome` reads, from this run's XComs."""
    escalation = next(
        (found for task in ESCALATION_TASKS if (found := run.read_optional(Escalation, task)) is not None),
        None,
    )
    retry = run.read_optional(ProdBuild, "retry")
    rerun = run.read_optional(ProdBuild, "rerun")
    validated = run.read_optional(ValidationOutcome, "validate", "result")
    failure = run.read_optional(Escalation, "escalate_failure")
    return {
        "retry": retry and retry.dump(),
        "escalate": escalation and escalation.dump(),
        "validate": validated and validated.dump(),
        "approve": run.pull("approve", None),
        "rerun": rerun and rerun.dump(),
        "failure": failure and failure.dump(),
        "states": run.task_states(["approve", "promote"]),
    }


def cleanup_step(config: RepairConfig, run: RunContext) -> RepairOutcome:
    """
    Drop the clone (if any), sweep orphaned clones older than ``clone_ttl``, and write the audit outcome.

    All three always happen; only a failure to drop this run's own clone fails the task (after the audit).
    A rejection also resolves the incident's page: nothing was applied.
    """
    from airflow_selfheal.core.repair.decisions import decide_outcome
    from airflow_selfheal.records.audit import AuditLog
    from airflow_selfheal.repair.notify import resolve_page

    if run.pull("triage", None) is None:
        return RepairOutcome(outcome="no_incident")
    decided = run.read(TriageDecision, "triage")
    cloned = run.read_optional(CloneOutcome, "clone")
    clone_database = cloned.clone_database if cloned else None
    results = run_results(run)
    outcome = decide_outcome(results)
    if outcome == "rejected":
        status = resolve_page(config, decided)
        run.record(decided.incident_id, "resolve", status, reason="rejected")
    failed_step = (results["failure"] or {}).get("failed_step")
    dropped = None
    error = None
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    if clone_database:
        try:
            dropped = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id).drop_clone(
                clone_database
            )
        except Exception as exc:  # noqa: BLE001 - the audit outcome must still be written; re-raised below
            error = f"{type(exc).__name__}: {exc}"
    swept: list[str] | str = []
    try:
        swept = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id).sweep_clones(config.clone_ttl)
    except Exception as exc:  # noqa: BLE001 - an orphan sweep must not fail this incident's cleanup
        log.warning("The sweep of clones older than %s failed: %s", config.clone_ttl, exc)
        swept = f"failed: {type(exc).__name__}"
    extra = {"failed_step": failed_step} if failed_step else {}
    AuditLog(decided.incident_id, run.store).finish(
        outcome, clone=clone_database, clone_dropped=dropped, swept_orphans=swept, error=error, **extra
    )
    if error:
        raise RuntimeError(f"could not drop clone {clone_database}: {error}")
    return RepairOutcome(
        outcome=outcome,
        clone=clone_database,
        clone_dropped=dropped,
        swept_orphans=list(swept) if isinstance(swept, list) else swept,
    )
