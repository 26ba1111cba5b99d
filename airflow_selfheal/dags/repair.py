"""``build_repair_dag``: the repair loop as an Airflow DAG, wiring the steps of :mod:`airflow_selfheal.repair`.

.. code-block:: text

    triage -> branch -> retry                        (transient: once the warehouse answers, re-run the failed selector in prod)
                     -> escalate                     (unknown, not fixable: page with logs, stop)
                     -> clone -> propose -> validate -> page -> approve -> promote -> rerun -> accept_baseline -> resolve
                                                                        -> unanswered (timeout: escalate)
    cleanup (teardown, always): drop the clone, write the audit outcome

The run's conf is the failure callback's ``repair_conf``. Task bodies import their dependencies when they run,
so parsing this DAG imports neither dbt nor the Snowflake connector.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import DAG, task

from airflow_selfheal.repair import BRANCH_ESCALATE, BRANCH_REPAIR, BRANCH_RETRY, RepairConfig

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_DAG_ID = "selfheal_repair"
APPROVE_TASK = "approve"


def _store() -> Any:
    from airflow_selfheal.hooks.artifacts import ArtifactStore

    return ArtifactStore()


def _audit(incident_id: str) -> Any:
    from airflow_selfheal.records.audit import AuditLog

    return AuditLog(incident_id, _store())


def _run_key(context: Mapping[str, Any]) -> str:
    """The run id as a path segment: letters, digits, ``.``, ``_`` and ``-``."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(context["run_id"]))


def _scope(kind: str, context: Mapping[str, Any]) -> str:
    """Pages are sent once per run (a task retry does not page twice; a new repair run of the incident does)."""
    return f"{kind}/{_run_key(context)}"


def _record(context: Mapping[str, Any], incident_id: str, step: str, status: str, **details: Any) -> None:
    """Audit one step, with ``seconds`` since its task instance started (the trail's duration column)."""
    from datetime import datetime, timezone

    started = getattr(context.get("ti"), "start_date", None)
    if started is not None:
        details.setdefault("seconds", round((datetime.now(timezone.utc) - started).total_seconds(), 1))
    _audit(incident_id).record(step, status, **details)


def _pull(context: Mapping[str, Any], task_id: str) -> Any:
    return context["ti"].xcom_pull(task_ids=task_id)


#: The steps whose failure pages on-call with the step and its error (approve has its own: ``unanswered``).
WATCHED_STEPS = (BRANCH_RETRY, BRANCH_REPAIR, "propose", "validate", "page", "promote", "rerun")
FAILURE_KEY = "failure"
_Body = TypeVar("_Body", bound="Callable[..., Any]")


def _note_failure(context: Mapping[str, Any], step: str, exc: BaseException) -> None:
    """Keep a crashed step's error (redacted) in XCom for the failure page, and audit it; never raises."""
    from airflow_selfheal.core.redaction import redact

    error = redact(f"{type(exc).__name__}: {exc}")[:4000]
    try:
        context["ti"].xcom_push(key=FAILURE_KEY, value={"step": step, "error": error})
        decided = _pull(context, "triage") or {}
        incident_id = (decided.get("incident") or {}).get("incident_id")
        if incident_id:
            _record(context, incident_id, step, "failed", error=error)
    except Exception:  # noqa: BLE001 - the step's own error is what the task must raise
        import logging

        logging.getLogger(__name__).exception("could not record the failure of %s", step)


def _watched(step: str) -> Callable[[_Body], _Body]:
    """Wrap a task body so that a crash is noted (see :func:`_note_failure`) and re-raised."""

    def wrap(body: _Body) -> _Body:
        @functools.wraps(body)
        def run(*args: Any, **context: Any) -> Any:
            try:
                return body(*args, **context)
            except Exception as exc:
                _note_failure(context, step, exc)
                raise

        return cast("_Body", run)

    return wrap


def build_repair_dag(dag_id: str = DEFAULT_DAG_ID, *, config: RepairConfig, **dag_kwargs: Any) -> DAG:
    """
    Build the repair DAG for one dbt project.

    .. code-block:: python

        dag = build_repair_dag(
            config=RepairConfig(project_dir="/opt/dbt/shop", snowflake_conn_id="snowflake", prod_database="PROD")
        )

    :param dag_id: must match ``[selfheal] repair_dag_id`` (default ``selfheal_repair``), which the failure
        callback triggers.
    :param config: the project, warehouse, git and paging settings.
    :param dag_kwargs: passed to ``DAG`` (e.g. ``tags``); ``schedule`` is None and ``max_active_runs`` is 1, so
        incidents queue and never share a clone.
    :return: the DAG.
    """
    dag_kwargs.setdefault("start_date", datetime(2026, 1, 1))
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("tags", ["selfheal"])
    dag_kwargs.setdefault("doc_md", __doc__)
    dag_kwargs.setdefault("default_args", {"retries": 0})
    with DAG(dag_id, schedule=None, max_active_runs=1, **dag_kwargs) as dag:

        @task(task_id="triage")
        def triage(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import load_incident, triage_step

            incident = load_incident(context["dag_run"].conf or {})
            decision = triage_step(incident)
            _record(
                context,
                incident["incident_id"],
                "triage",
                decision["action"],
                branch=decision["branch"],
                select=decision["select"],
            )
            return {"incident": incident, **decision}

        @task.branch(task_id="route")
        def route(decided: dict[str, Any]) -> str:
            return str(decided["branch"])

        def build_in_prod(
            context: Mapping[str, Any], decided: Mapping[str, Any], step: str
        ) -> dict[str, Any]:
            """``dbt build`` of the failed selector in prod, audited; a failed build fails the task."""
            from airflow_selfheal.repair import run_in_prod

            result = run_in_prod(config, decided["select"])
            incident_id = decided["incident"]["incident_id"]
            _record(context, incident_id, step, "succeeded" if result["success"] else "failed", **result)
            if not result["success"]:
                raise RuntimeError(
                    f"{step}: dbt build --select {decided['select']} failed in prod: {result['logs_excerpt']}"
                )
            return result

        @task(task_id=BRANCH_RETRY)
        @_watched(BRANCH_RETRY)
        def retry(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            """Wait (bounded) until the warehouse answers, then re-run the failed (or blocked) selector in prod."""
            from airflow_selfheal.repair import WarehouseUnreachableError, wait_for_warehouse

            incident_id = decided["incident"]["incident_id"]
            try:
                waited = wait_for_warehouse(config.snowflake_conn_id, config.warehouse_wait)
            except WarehouseUnreachableError as exc:
                _record(context, incident_id, "wait_for_warehouse", "timed_out", error=str(exc))
                raise
            _record(context, incident_id, "wait_for_warehouse", "answered", **waited)
            return {**build_in_prod(context, decided, "retry"), "warehouse": waited}

        def page_escalation(
            context: Mapping[str, Any],
            incident: Mapping[str, Any],
            reason: str,
            logs: str = "",
            failed_step: str | None = None,
        ) -> dict[str, Any]:
            """Page a person with the reason and the logs, once per run; the audit records it."""
            from airflow_selfheal.repair import deliver_page, escalation_page

            page = escalation_page(incident, reason, logs, failed_step=failed_step)
            report = deliver_page(config, page, _store(), _scope("escalations", context))
            _record(
                context,
                incident["incident_id"],
                "escalate",
                "paged",
                reason=reason,
                failed_step=failed_step,
                delivery=report,
            )
            return {"reason": reason, "failed_step": failed_step, "delivery": report}

        @task(task_id=BRANCH_ESCALATE)
        def escalate(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            triage = decided["triage"]
            reason = (
                f"triage: {triage.get('failure_class')} -> {decided['action']}: {triage.get('summary') or ''}"
                if decided["select"]
                else "the incident names no dbt node to re-run or repair"
            )
            return page_escalation(context, decided["incident"], reason)

        @task(task_id=BRANCH_REPAIR)
        @_watched(BRANCH_REPAIR)
        def clone(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import clone_step

            ti = context["ti"]
            result = clone_step(
                config, decided["incident"], attempt_key=f"{_run_key(context)}-try{ti.try_number}"
            )
            _record(
                context,
                decided["incident"]["incident_id"],
                "clone",
                "succeeded",
                clone=result["clone_database"],
                strategy=result.get("strategy"),
                at_ignored_reason=result.get("at_ignored_reason"),
                dbt_built_views=result.get("dbt_built_views"),
                notes=result.get("notes"),
            )
            return result

        @task.branch(task_id="propose")
        @_watched("propose")
        def propose(decided: dict[str, Any], cloned: dict[str, Any], **context: Any) -> str:
            from airflow_selfheal.repair import propose_step

            outcome = propose_step(config, decided["incident"], decided["triage"], _store())
            context["ti"].xcom_push(key="plan", value=outcome)
            _record(
                context,
                decided["incident"]["incident_id"],
                "propose",
                outcome["kind"],
                fix_type=outcome.get("fix_type"),
                reason=outcome.get("reason"),
            )
            if outcome["kind"] != "fix_plan":
                return "escalate_unfixable"
            return "validate"

        @task(task_id="escalate_unfixable")
        def escalate_unfixable(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            reason = str(context["ti"].xcom_pull(task_ids="propose", key="plan")["reason"])
            return page_escalation(context, decided["incident"], reason)

        @task.branch(task_id="validate")
        @_watched("validate")
        def validate(decided: dict[str, Any], cloned: dict[str, Any], **context: Any) -> str:
            from airflow_selfheal.repair import approval_body, validate_step

            plan = context["ti"].xcom_pull(task_ids="propose", key="plan")
            ti = context["ti"]
            result = validate_step(
                config,
                decided["incident"],
                plan,
                cloned["clone_database"],
                decided["select"],
                _store(),
                attempt_key=f"{_run_key(context)}-try{ti.try_number}",
            )
            if result["status"] == "proposal":
                result["approval_body"] = approval_body(decided["incident"], decided["triage"], result)
            context["ti"].xcom_push(key="result", value=result)
            _record(
                context,
                decided["incident"]["incident_id"],
                "validate",
                result["status"],
                attempts=result.get("attempts"),
                reason=result.get("reason"),
            )
            return "page" if result["status"] == "proposal" else "escalate_invalid"

        @task(task_id="escalate_invalid")
        def escalate_invalid(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            result = context["ti"].xcom_pull(task_ids="validate", key="result")
            return page_escalation(
                context, decided["incident"], result["reason"], str(result.get("logs_excerpt") or "")
            )

        @task(task_id="page")
        @_watched("page")
        def page(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import approval_link, deliver_page, proposal_page

            link = approval_link(
                context["dag"].get_task(APPROVE_TASK),
                context["dag"].dag_id,
                context["run_id"],
                config.base_url,
            )
            result = context["ti"].xcom_pull(task_ids="validate", key="result")
            report = deliver_page(
                config,
                proposal_page(decided["incident"], decided["triage"], result, link),
                _store(),
                _scope("proposals", context),
            )
            sent = any(outcome == "sent" for outcome in report["channels"].values())
            _record(
                context,
                decided["incident"]["incident_id"],
                "page",
                "sent" if sent else "not_sent",
                link=link,
                delivery=report,
            )
            return report

        approve = ApprovalOperator(
            task_id=APPROVE_TASK,
            subject="selfheal: promote the fix for {{ ti.xcom_pull(task_ids='triage')['incident']['incident_id'] }}?",
            body="{{ ti.xcom_pull(task_ids='validate', key='result')['approval_body'] }}",
            response_timeout=config.approval_timeout,
            assigned_users=list(config.assigned_users) if config.assigned_users else None,
        )

        # Only approve upstream: all_failed must see the approval's failure (a timeout) alone.
        @task(task_id="unanswered", trigger_rule="all_failed")
        def unanswered(**context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowSkipException

            # all_failed also fires when the approval never ran (an earlier failure): that is not a timeout.
            ti = context["ti"]
            states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[APPROVE_TASK], run_ids=[ti.run_id])
            if states.get(ti.run_id, {}).get(APPROVE_TASK) != "failed":
                raise AirflowSkipException(f"the approval did not time out: {states}")
            decided = _pull(context, "triage")
            _record(context, decided["incident"]["incident_id"], "approve", "timed_out")
            reason = "the approval timed out or failed; nothing was applied"
            return page_escalation(context, decided["incident"], reason)

        @task(task_id="promote")
        @_watched("promote")
        def promote(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import approver, promote_step

            response = _pull(context, APPROVE_TASK)
            approved, author = approver(response)
            # A Reject skips this task, so running means Approve even when the response is not in XCom.
            if response is not None and not approved:
                raise RuntimeError("promotion without an approval")
            result = context["ti"].xcom_pull(task_ids="validate", key="result")
            promoted = promote_step(config, decided["incident"], result, author, _store())
            _record(
                context,
                decided["incident"]["incident_id"],
                "promote",
                "succeeded",
                approved_by=author,
                **promoted,
            )
            return promoted

        @task(task_id="rerun")
        @_watched("rerun")
        def rerun(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import promoted_selector

            # Prod rebuilds what validation built: the fixed models and their children, not only the failed node.
            validated = context["ti"].xcom_pull(task_ids="validate", key="result")
            select = promoted_selector(validated, decided["select"])
            return build_in_prod(context, {**decided, "select": select}, "rerun")

        @task(task_id="accept_baseline")
        def accept_baseline(decided: dict[str, Any], **context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import accept_baseline_step, approver

            _, author = approver(_pull(context, APPROVE_TASK))
            result = accept_baseline_step(
                config, decided["triage"], author, decided["incident"]["incident_id"]
            )
            _record(
                context,
                decided["incident"]["incident_id"],
                "accept_baseline",
                "accepted" if result["accepted"] else "skipped",
                **result,
            )
            return result

        @task(task_id="resolve")
        def resolve(decided: dict[str, Any], **context: Any) -> str:
            from airflow_selfheal.repair import resolve_page

            status = resolve_page(config, decided["incident"])
            _record(context, decided["incident"]["incident_id"], "resolve", status)
            return status

        # Any crash from the retry or the clone onwards reaches a person: which step failed, and its error.
        @task(task_id="escalate_failure", trigger_rule="one_failed")
        def escalate_failure(**context: Any) -> dict[str, Any]:
            from airflow.sdk.exceptions import AirflowSkipException

            from airflow_selfheal.repair import failure_reason

            ti = context["ti"]
            decided = _pull(context, "triage")
            states = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(WATCHED_STEPS), run_ids=[ti.run_id])
            failed = [step for step in WATCHED_STEPS if states.get(ti.run_id, {}).get(step) == "failed"]
            if not failed or not decided:
                raise AirflowSkipException(f"no watched step failed: {states}")
            step = failed[0]
            note = ti.xcom_pull(task_ids=step, key=FAILURE_KEY) or {}
            return page_escalation(
                context,
                decided["incident"],
                failure_reason(step, note.get("error")),
                failed_step=step,
            )

        @task(task_id="cleanup")
        def cleanup(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair import cleanup_step, decide_outcome, resolve_page

            decided = _pull(context, "triage")
            if not decided:
                return {"outcome": "no_incident"}
            cloned = _pull(context, BRANCH_REPAIR) or {}
            results = {
                "retry": _pull(context, BRANCH_RETRY),
                "escalate": _pull(context, BRANCH_ESCALATE)
                or _pull(context, "escalate_unfixable")
                or _pull(context, "escalate_invalid")
                or _pull(context, "unanswered"),
                "validate": context["ti"].xcom_pull(task_ids="validate", key="result"),
                "approve": _pull(context, APPROVE_TASK),
                "rerun": _pull(context, "rerun"),
                "failure": _pull(context, "escalate_failure"),
            }
            ti = context["ti"]
            found = ti.get_task_states(
                dag_id=ti.dag_id, task_ids=[APPROVE_TASK, "promote"], run_ids=[ti.run_id]
            )
            results["states"] = found.get(ti.run_id, {})
            outcome = decide_outcome(results)
            if outcome == "rejected":
                # A rejection ends the incident's page too; nothing was applied.
                status = resolve_page(config, decided["incident"])
                _record(context, decided["incident"]["incident_id"], "resolve", status, reason="rejected")
            return cleanup_step(
                config,
                decided["incident"]["incident_id"],
                cloned.get("clone_database"),
                outcome,
                _store(),
                failed_step=(results["failure"] or {}).get("failed_step"),
            )

        decided = triage()
        routed = route(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        cloned = clone(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        proposed = propose(decided, cloned)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        unfixable = escalate_unfixable(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        validated = validate(decided, cloned)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        invalid = escalate_invalid(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        paged = page(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        timed_out = unanswered()
        promoted = promote(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        reran = rerun(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        baselined = accept_baseline(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        resolved = resolve(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        done = cleanup()
        crashed = escalate_failure()

        retried = retry(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        escalated = escalate(decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        routed >> [retried, escalated, cloned]
        proposed >> [unfixable, validated]
        validated >> [invalid, paged]
        paged >> approve >> [promoted, timed_out]
        promoted >> reran >> baselined >> resolved
        done.as_teardown(setups=decided)  # type: ignore[arg-type]  # TaskFlow passes XComArgs
        [retried, cloned, proposed, validated, paged, promoted, reran] >> crashed
        [resolved, timed_out, invalid, unfixable, retried, escalated, crashed] >> done
    return dag
