"""A repair step's :class:`~airflow_selfheal.repair.run.RunContext` over plain values instead of a scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_selfheal.repair.run import RunContext

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_selfheal.hooks.artifacts import ArtifactStore


@dataclass
class FakeRun:
    """
    XComs by ``(task_id, key)`` (key None for a return value), task states, and what a step pushed.

    A step reads and writes through the real :class:`RunContext`; only the scheduler behind it is replaced.
    """

    store: ArtifactStore
    xcoms: dict[tuple[str, str | None], Any] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    pushed: dict[str, Any] = field(default_factory=dict)
    run_id: str = "manual__2026-12-03T10:00:00+00:00"
    try_number: int = 1

    def context(self, task_id: str = "step") -> RunContext:
        """The step's context."""

        def task_states(task_ids: Sequence[str]) -> dict[str, str]:
            return {task: self.states[task] for task in task_ids if task in self.states}

        return RunContext(
            dag_id="selfheal_repair",
            run_id=self.run_id,
            task_id=task_id,
            try_number=self.try_number,
            store=self.store,
            pull=lambda task, key: self.xcoms.get((task, key)),
            push=self.pushed.__setitem__,
            task_states=task_states,
        )
