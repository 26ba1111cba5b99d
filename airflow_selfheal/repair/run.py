"""
``RunContext``: what a repair step may know of the Airflow task it runs in, and nothing of Airflow itself.

A step reads earlier tasks' results as typed contracts (:meth:`RunContext.read`), audits what it did
(:meth:`RunContext.record`) and names its per-run, per-try folders and records (:attr:`RunContext.attempt_key`).
The DAG factory builds one from the task's context with :meth:`RunContext.from_airflow`; a test builds one
from plain values, so every step runs without a scheduler.

.. code-block:: python

    run = RunContext.from_airflow(context)
    decided = run.read(TriageDecision, "triage")
    run.record(decided.incident_id, "clone", "succeeded", clone=clone.clone_database)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_selfheal.core.contracts import Contract
    from airflow_selfheal.hooks.artifacts import ArtifactStore

_C = TypeVar("_C", bound="Contract")
_SEGMENT = re.compile(r"[^A-Za-z0-9_.-]")


def _no_xcom(task_id: str, key: str | None) -> Any:
    return None


def _no_states(task_ids: Sequence[str]) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class RunContext:
    """
    One task instance of a repair run, as the steps see it.

    :param dag_id: the repair DAG.
    :param run_id: the repair run.
    :param task_id: the task running the step.
    :param try_number: the task's try, 1 for the first.
    :param conf: the run's conf (the failure callback's ``repair_conf``).
    :param store: the artifacts root shared by every worker.
    :param pull: ``pull(task_id, key)`` of an earlier task's XCom (``key`` None for its return value).
    :param push: ``push(key, value)`` of an extra XCom of this task.
    :param task_states: ``task_states(task_ids)`` -> task id to state, in this run.
    :param started_at: when the task instance started (for the audit's ``seconds``), if known.
    """

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    store: ArtifactStore
    conf: Mapping[str, Any] = field(default_factory=dict)
    pull: Callable[[str, str | None], Any] = _no_xcom
    push: Callable[[str, Any], None] = lambda key, value: None
    task_states: Callable[[Sequence[str]], dict[str, str]] = _no_states
    started_at: datetime | None = None

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any], store: ArtifactStore | None = None) -> RunContext:
        """From a task's Airflow context (``**context`` of a TaskFlow body)."""
        if store is None:
            from airflow_selfheal.hooks.artifacts import ArtifactStore

            store = ArtifactStore()
        ti = context["ti"]
        dag_run = context.get("dag_run")

        def pull(task_id: str, key: str | None) -> Any:
            if key is None:
                return ti.xcom_pull(task_ids=task_id)
            return ti.xcom_pull(task_ids=task_id, key=key)

        def push(key: str, value: Any) -> None:
            ti.xcom_push(key=key, value=value)

        def task_states(task_ids: Sequence[str]) -> dict[str, str]:
            found = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(task_ids), run_ids=[ti.run_id])
            return {task: str(state) for task, state in (found.get(ti.run_id) or {}).items()}

        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(context["run_id"]),
            task_id=str(ti.task_id),
            try_number=int(getattr(ti, "try_number", 1) or 1),
            store=store,
            conf=dict(getattr(dag_run, "conf", None) or {}),
            pull=pull,
            push=push,
            task_states=task_states,
            started_at=getattr(ti, "start_date", None),
        )

    @property
    def run_key(self) -> str:
        """The run id as a path segment: letters, digits, ``.``, ``_`` and ``-``."""
        return _SEGMENT.sub("_", self.run_id)

    @property
    def attempt_key(self) -> str:
        """Names this run's and try's folders and records, so that no two tries share one."""
        return f"{self.run_key}-try{self.try_number}"

    def scope(self, kind: str) -> str:
        """Pages are sent once per run: a task retry does not page twice; a new repair run of the incident does."""
        return f"{kind}/{self.run_key}"

    def read(self, contract: type[_C], task_id: str, key: str | None = None) -> _C:
        """An earlier task's result, validated; :class:`~airflow_selfheal.core.contracts.ContractError` if not."""
        where = f"XCom of task {task_id}" + (f" (key {key})" if key else "")
        return contract.read(self.pull(task_id, key), source=f"{where} in run {self.run_id}")

    def read_optional(self, contract: type[_C], task_id: str, key: str | None = None) -> _C | None:
        """Like :meth:`read`, but None when the task did not run (a branch not taken)."""
        value = self.pull(task_id, key)
        return None if value is None else self.read(contract, task_id, key)

    def record(self, incident_id: str, step: str, status: str, **details: Any) -> None:
        """Audit one step, with ``seconds`` since this task instance started (the trail's duration column)."""
        from airflow_selfheal.records.audit import AuditLog

        if self.started_at is not None:
            details.setdefault(
                "seconds", round((datetime.now(timezone.utc) - self.started_at).total_seconds(), 1)
            )
        AuditLog(incident_id, self.store).record(step, status, **details)
