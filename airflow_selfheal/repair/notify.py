"""
The steps that reach a person: the proposal page, every escalation page, and the resolve.

Each page is sent once per run and scope (a task retry does not page twice), and a delivery failure is reported
in the result, never raised: it must not block the approval or the cleanup.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import Escalation, ProposedPlan, TriageDecision, ValidationOutcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_selfheal.core.pages.render import Page
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext

log = logging.getLogger(__name__)

#: The task whose crash pages on-call carries its error under this XCom key.
FAILURE_KEY = "failure"


def deliver_page(config: RepairConfig, page: Page, store: ArtifactStore | None, scope: str) -> dict[str, Any]:
    """Send a page; a delivery failure is reported, never raised (it must not block approval)."""
    from airflow_selfheal.notifications.delivery import deliver

    return deliver(
        page,
        slack_conn_id=config.slack_conn_id,
        pagerduty_conn_id=config.pagerduty_conn_id,
        store=store,
        scope=scope,
    ).to_dict()


def resolve_page(config: RepairConfig, decided: TriageDecision) -> str:
    """Resolve the PagerDuty incident of the fingerprint; ``skipped`` without a connection."""
    from airflow_selfheal.core.pages.repair import resolved_page
    from airflow_selfheal.notifications.delivery import send_pagerduty

    if not config.pagerduty_conn_id:
        return "skipped"
    try:
        send_pagerduty(resolved_page(decided.incident), config.pagerduty_conn_id, action="resolve")
    except Exception as exc:  # noqa: BLE001 - the fix is promoted; a failed resolve must not fail the run
        log.warning("Could not resolve the page for %s: %s", decided.incident_id, exc)
        return f"failed: {type(exc).__name__}"
    return "resolved"


def approval_link(approve_task: Any, dag_id: str, run_id: str, base_url: str | None) -> str | None:
    """
    The Airflow UI's "required actions" page of the approval task, or None when no base URL is known.

    Built by the standard provider's ``HITLOperator.generate_link_to_ui`` for the approval task (not the task
    that sends the page), so the link opens the Approve / Reject form.
    """
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id=dag_id, run_id=run_id, task_id=approve_task.task_id, map_index=-1)
    try:
        return str(approve_task.generate_link_to_ui(task_instance=ti, base_url=base_url))
    except ValueError as exc:
        log.warning("No approval link in the page: %s. Fix: set [api] base_url.", exc)
        return None


def page_step(config: RepairConfig, run: RunContext, link: str | None) -> dict[str, Any]:
    """Page on-call with the validated proposal and the approval link (audited); returns the delivery report."""
    from airflow_selfheal.core.pages.repair import proposal_page

    decided = run.read(TriageDecision, "triage")
    validated = run.read(ValidationOutcome, "validate", "result")
    report = deliver_page(
        config,
        proposal_page(decided.incident, decided.triage, validated.dump(), link),
        run.store,
        run.scope("proposals"),
    )
    sent = any(outcome == "sent" for outcome in report["channels"].values())
    run.record(decided.incident_id, "page", "sent" if sent else "not_sent", link=link, delivery=report)
    return report


def page_escalation(
    config: RepairConfig,
    run: RunContext,
    decided: TriageDecision,
    reason: str,
    logs: str = "",
    failed_step: str | None = None,
) -> Escalation:
    """Page a person with the reason and the logs, once per run; the audit records it."""
    from airflow_selfheal.core.pages.repair import escalation_page

    page = escalation_page(decided.incident, reason, logs, failed_step=failed_step)
    report = deliver_page(config, page, run.store, run.scope("escalations"))
    run.record(
        decided.incident_id, "escalate", "paged", reason=reason, failed_step=failed_step, delivery=report
    )
    return Escalation(reason=reason, failed_step=failed_step, delivery=report)


def escalate_step(config: RepairConfig, run: RunContext) -> Escalation:
    """The triage decided a person must look (not fixable, or nothing to select)."""
    decided = run.read(TriageDecision, "triage")
    triage = decided.triage
    reason = (
        f"triage: {triage.get('failure_class')} -> {decided.action}: {triage.get('summary') or ''}"
        if decided.select
        else "the incident names no dbt node to re-run or repair"
    )
    return page_escalation(config, run, decided, reason)


def escalate_unfixable_step(config: RepairConfig, run: RunContext) -> Escalation:
    """No proposer had a plan; the page says why."""
    proposed = run.read(ProposedPlan, "propose", "plan")
    return page_escalation(config, run, run.read(TriageDecision, "triage"), proposed.reason)


def escalate_invalid_step(config: RepairConfig, run: RunContext) -> Escalation:
    """Validation failed (and the attempt loop ended); the page carries the last attempt's logs and evidence."""
    validated = run.read(ValidationOutcome, "validate", "result")
    logs = validated.logs_excerpt
    if validated.evidence_prefix:
        logs = f"{logs}\n\nEvidence: {validated.evidence_prefix} on the artifacts root".strip()
    return page_escalation(config, run, run.read(TriageDecision, "triage"), str(validated.reason), logs)


def unanswered_step(config: RepairConfig, run: RunContext, approve_task: str) -> Escalation | None:
    """
    The approval timed out (or failed): page that nothing was applied; None when the approval never ran.

    ``all_failed`` also fires when an earlier failure kept the approval from running: that is not a timeout.
    """
    if run.task_states([approve_task]).get(approve_task) != "failed":
        return None
    decided = run.read(TriageDecision, "triage")
    run.record(decided.incident_id, "approve", "timed_out")
    return page_escalation(config, run, decided, "the approval timed out or failed; nothing was applied")


def escalate_failure_step(config: RepairConfig, run: RunContext, watched: Sequence[str]) -> Escalation | None:
    """
    A watched step crashed: page which one, what it was doing and its error; None when none failed.

    :param watched: the steps whose crash pages, in the order they run (the first failed one is named).
    """
    from airflow_selfheal.core.repair.decisions import failure_reason

    if run.pull("triage", None) is None:
        return None
    states = run.task_states(watched)
    failed = [step for step in watched if states.get(step) == "failed"]
    if not failed:
        return None
    step = failed[0]
    note = run.pull(step, FAILURE_KEY) or {}
    decided = run.read(TriageDecision, "triage")
    return page_escalation(config, run, decided, failure_reason(step, note.get("error")), failed_step=step)


def resolve_step(config: RepairConfig, run: RunContext) -> str:
    """Resolve the incident's page after the fix is green in prod (audited)."""
    decided = run.read(TriageDecision, "triage")
    status = resolve_page(config, decided)
    run.record(decided.incident_id, "resolve", status)
    return status
