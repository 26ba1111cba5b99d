"""The repair loop's decisions: which branch a triage takes, when an attempt loop stops, who approved, the outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.repair.selectors import failed_selector

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

#: The tasks the route branch can follow.
BRANCH_RETRY = "retry"
BRANCH_ESCALATE = "escalate"
BRANCH_REPAIR = "clone"
#: Characters kept of a reason or an error on a page.
REASON_LIMIT = 4_000


def triage_decision(incident: Mapping[str, Any]) -> dict[str, Any]:
    """
    The triage of the incident (the callback's, or a fresh :func:`~airflow_selfheal.core.triage.classify`).

    A failure outside dbt (no failed node) cannot be repaired by a code change: a transient one that blocked
    dbt nodes is retried (the blocked nodes are rebuilt once the warehouse answers), anything else escalates,
    with ``action`` set to ``escalate`` (the triage keeps what it recommended).

    :param incident: ``Incident.to_dict()``.
    :return: ``{"triage": Triage dict, "action": retry|repair|escalate, "branch": the task to follow,
        "select": the failed selector}``.
    """
    from airflow_selfheal.core.triage import Triage, classify

    recorded = incident.get("triage")
    if recorded:
        triage = Triage.from_dict(recorded).to_dict()
    else:
        nodes = incident.get("nodes") or ()
        first = nodes[0] if nodes else {}
        triage = classify(
            str(incident.get("error") or ""), resource_type=first.get("resource_type")
        ).to_dict()
    action = str(triage.get("action") or "escalate")
    branch = {"retry": BRANCH_RETRY, "repair": BRANCH_REPAIR}.get(action, BRANCH_ESCALATE)
    try:
        select = failed_selector(incident)
    except ValueError:
        select, branch = "", BRANCH_ESCALATE
    if not incident.get("nodes") and branch == BRANCH_REPAIR:
        action, branch = "escalate", BRANCH_ESCALATE
    return {"triage": triage, "action": action, "branch": branch, "select": select}


def attempt_decision(signatures: Sequence[str], success: bool, max_attempts: int) -> str:
    """
    What to do after a validation attempt.

    :param signatures: the error signatures of the failed attempts so far, oldest first.
    :param success: whether the last attempt passed.
    :param max_attempts: the attempt limit.
    :return: ``proposal`` (passed), ``escalate_same_error`` (the last two failures are the same),
        ``escalate_attempts`` (the limit is reached) or ``retry``.
    """
    if success:
        return "proposal"
    if len(signatures) >= 2 and signatures[-1] == signatures[-2]:
        return "escalate_same_error"
    if len(signatures) >= max_attempts:
        return "escalate_attempts"
    return "retry"


def approver(response: Mapping[str, Any] | None) -> tuple[bool, str]:
    """
    Whether the approval task's response approves, and who answered.

    :param response: the ApprovalOperator's XCom (``chosen_options``, ``responded_by_user``), or None.
    :return: ``(approved, "Name <email>")`` for the commit's author.
    """
    if not response:
        return False, "unknown <selfheal@localhost>"
    user = response.get("responded_by_user") or {}
    name = str(user.get("name") or user.get("id") or "unknown").replace("<", "").replace(">", "").strip()
    ident = "".join(ch for ch in str(user.get("id") or name) if ch.isalnum() or ch in "._-") or "unknown"
    return list(response.get("chosen_options") or []) == [
        "Approve"
    ], f"{name or 'unknown'} <{ident}@selfheal>"


#: What each watched step was doing, for the page that says it failed.
STEP_DOING = {
    BRANCH_RETRY: "re-running the failed selector in prod",
    BRANCH_REPAIR: "cloning prod",
    "propose": "proposing a fix",
    "validate": "validating the fix in the clone",
    "page": "paging on-call with the proposal",
    "promote": "promoting the approved fix",
    "rerun": "re-running the promoted fix in prod",
}


def failure_reason(step: str, error: str | None) -> str:
    """
    Why a crashed repair run pages: the step, what it was doing and its error (redacted).

    :param step: the task that failed, e.g. ``clone``.
    :param error: its error, or None when the task died without reporting one (killed, out of memory).
    :return: e.g. ``the repair run failed at clone (cloning prod): RuntimeError: clone … is not complete``.
    """
    from airflow_selfheal.core.redaction import redact

    doing = STEP_DOING.get(step)
    where = f"{step} ({doing})" if doing else step
    detail = redact(error) if error else "the task reported no error (killed?); see its log in Airflow"
    return f"the repair run failed at {where}: {detail}"[:REASON_LIMIT]


def decide_outcome(results: Mapping[str, Any]) -> str:
    """
    The repair's outcome from the tasks' XComs (missing ones are None).

    :param results: ``retry``, ``escalate``, ``validate``, ``approve``, ``rerun`` values, and ``states`` (task id
        to state) when known.
    :return: ``resolved``, ``retried``, ``retry_failed``, ``escalated``, ``rejected``, ``promoted_rerun_failed``,
        ``step_failed`` (a step crashed and on-call was paged, ``failure`` holds that page), ``timed_out_or_failed``.
    """
    rerun = results.get("rerun")
    if rerun is not None:
        return "resolved" if rerun.get("success") else "promoted_rerun_failed"
    failure = results.get("failure")
    if failure is not None:
        step = failure.get("failed_step")
        return {BRANCH_RETRY: "retry_failed", "rerun": "promoted_rerun_failed"}.get(step, "step_failed")
    retry = results.get("retry")
    if retry is not None:
        return "retried" if retry.get("success") else "retry_failed"
    approve = results.get("approve")
    states = results.get("states") or {}
    if approve is not None:
        approved, _ = approver(approve)
        return "promotion_failed" if approved else "rejected"
    if states.get("approve") == "success":
        # Reject skips promote; an approval lets it run.
        return "rejected" if states.get("promote") == "skipped" else "promotion_failed"
    if states.get("approve") == "failed":
        return "timed_out"
    if results.get("escalate") is not None or (results.get("validate") or {}).get("status") == "escalate":
        return "escalated"
    if (results.get("validate") or {}).get("status") == "proposal":
        return "timed_out_or_failed"
    return "failed"
