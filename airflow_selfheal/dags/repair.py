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

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from airflow.sdk import BaseOperator
    from airflow.sdk.definitions.xcom_arg import XComArg

    from airflow_selfheal.repair import RepairConfig
    from airflow_selfheal.repair.run import RunContext

DEFAULT_DAG_ID = "selfheal_repair"
APPROVE_TASK = "approve"
#: The route's branches (the same names as :mod:`airflow_selfheal.core.repair.decisions`, without importing it).
BRANCH_RETRY = "retry"
BRANCH_ESCALATE = "escalate"
BRANCH_REPAIR = "clone"
#: The steps whose failure pages on-call with the step and its error (approve has its own: ``unanswered``).
WATCHED_STEPS = (BRANCH_RETRY, BRANCH_REPAIR, "propose", "validate", "page", "promote", "rerun")
_Body = TypeVar("_Body", bound="Callable[..., Any]")


def _run(context: Mapping[str, Any]) -> RunContext:
    from airflow_selfheal.repair.run import RunContext

    return RunContext.from_airflow(context)


def _operator_of(output: XComArg) -> BaseOperator:
    """The task behind a TaskFlow call's output (what ``as_teardown`` takes as its setup)."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    if not isinstance(output, PlainXComArg):
        raise TypeError(f"expected the output of one task, got {output!r}")
    return cast("BaseOperator", output.operator)


def _skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def _note_failure(context: Mapping[str, Any], step: str, exc: BaseException) -> None:
    """Keep a crashed step's error (redacted) in XCom for the failure page, and audit it; never raises."""
    from airflow_selfheal.core.redaction import redact
    from airflow_selfheal.repair.notify import FAILURE_KEY

    error = redact(f"{type(exc).__name__}: {exc}")[:4000]
    try:
        context["ti"].xcom_push(key=FAILURE_KEY, value={"step": step, "error": error})
        decided = context["ti"].xcom_pull(task_ids="triage") or {}
        incident_id = (decided.get("incident") or {}).get("incident_id")
        if incident_id:
            _run(context).record(incident_id, step, "failed", error=error)
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

    Each task body is a few lines: it builds the step's :class:`~airflow_selfheal.repair.run.RunContext`, runs
    the step of :mod:`airflow_selfheal.repair`, and returns the step's typed result as JSON. Tasks read earlier
    results from XCom themselves (validated against their contracts), so the wiring below is only dependencies.

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
            from airflow_selfheal.repair.triage import triage_step

            return triage_step(_run(context)).dump()

        @task.branch(task_id="route")
        def route(**context: Any) -> str:
            from airflow_selfheal.core.contracts import TriageDecision

            return _run(context).read(TriageDecision, "triage").branch

        @task(task_id=BRANCH_RETRY)
        @_watched(BRANCH_RETRY)
        def retry(**context: Any) -> dict[str, Any]:
            """Wait (bounded) until the warehouse answers, then re-run the failed (or blocked) selector in prod."""
            from airflow_selfheal.repair.production import retry_step

            return retry_step(config, _run(context)).dump()

        @task(task_id=BRANCH_ESCALATE)
        def escalate(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.notify import escalate_step

            return escalate_step(config, _run(context)).dump()

        @task(task_id=BRANCH_REPAIR)
        @_watched(BRANCH_REPAIR)
        def clone(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.clone import clone_step

            return clone_step(config, _run(context)).dump()

        @task.branch(task_id="propose")
        @_watched("propose")
        def propose(**context: Any) -> str:
            from airflow_selfheal.repair.propose import propose_step

            proposed = propose_step(config, _run(context))
            context["ti"].xcom_push(key="plan", value=proposed.dump())
            return "validate" if proposed.kind == "fix_plan" else "escalate_unfixable"

        @task(task_id="escalate_unfixable")
        def escalate_unfixable(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.notify import escalate_unfixable_step

            return escalate_unfixable_step(config, _run(context)).dump()

        @task.branch(task_id="validate")
        @_watched("validate")
        def validate(**context: Any) -> str:
            from airflow_selfheal.core.contracts import TriageDecision
            from airflow_selfheal.repair.validate import record_validation, validate_step

            run = _run(context)
            outcome = validate_step(config, run)
            context["ti"].xcom_push(key="result", value=outcome.dump())
            record_validation(run, run.read(TriageDecision, "triage"), outcome)
            return "page" if outcome.status == "proposal" else "escalate_invalid"

        @task(task_id="escalate_invalid")
        def escalate_invalid(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.notify import escalate_invalid_step

            return escalate_invalid_step(config, _run(context)).dump()

        @task(task_id="page")
        @_watched("page")
        def page(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.notify import approval_link, page_step

            approve_task = context["dag"].get_task(APPROVE_TASK)
            link = approval_link(approve_task, context["dag"].dag_id, context["run_id"], config.base_url)
            return page_step(config, _run(context), link)

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
            from airflow_selfheal.repair.notify import unanswered_step

            paged = unanswered_step(config, _run(context), APPROVE_TASK)
            if paged is None:
                _skip("the approval did not time out")
            return paged.dump() if paged else {}

        @task(task_id="promote")
        @_watched("promote")
        def promote(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.promote import promote_step

            return promote_step(config, _run(context), APPROVE_TASK).dump()

        @task(task_id="rerun")
        @_watched("rerun")
        def rerun(**context: Any) -> dict[str, Any]:
            """Prod rebuilds what validation built, at the promoted commit: the fixed models and their children."""
            from airflow_selfheal.repair.production import rerun_step

            return rerun_step(config, _run(context)).dump()

        @task(task_id="accept_baseline")
        def accept_baseline(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.production import accept_baseline_step

            return accept_baseline_step(config, _run(context)).dump()

        @task(task_id="resolve")
        def resolve(**context: Any) -> str:
            from airflow_selfheal.repair.notify import resolve_step

            return resolve_step(config, _run(context))

        # Any crash from the retry or the clone onwards reaches a person: which step failed, and its error.
        @task(task_id="escalate_failure", trigger_rule="one_failed")
        def escalate_failure(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.notify import escalate_failure_step

            paged = escalate_failure_step(config, _run(context), WATCHED_STEPS)
            if paged is None:
                _skip("no watched step failed")
            return paged.dump() if paged else {}

        @task(task_id="cleanup")
        def cleanup(**context: Any) -> dict[str, Any]:
            from airflow_selfheal.repair.cleanup import cleanup_step

            return cleanup_step(config, _run(context)).dump()

        decided = triage()
        routed = route()
        cloned = clone()
        proposed = propose()
        unfixable = escalate_unfixable()
        validated = validate()
        invalid = escalate_invalid()
        paged = page()
        timed_out = unanswered()
        promoted = promote()
        reran = rerun()
        baselined = accept_baseline()
        resolved = resolve()
        done = cleanup()
        crashed = escalate_failure()
        retried = retry()
        escalated = escalate()

        decided >> routed >> [retried, escalated, cloned]
        cloned >> proposed >> [unfixable, validated]
        validated >> [invalid, paged]
        paged >> approve >> [promoted, timed_out]
        promoted >> reran >> baselined >> resolved
        done.as_teardown(setups=_operator_of(decided))
        [retried, cloned, proposed, validated, paged, promoted, reran] >> crashed
        [resolved, timed_out, invalid, unfixable, retried, escalated, crashed] >> done
    return dag
