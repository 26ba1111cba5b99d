"""The approval link in the proposal page."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.repair.notify import approval_link


class TestApprovalLink:
    def approve_task(self) -> Any:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        return ApprovalOperator(task_id="approve", subject="s")

    def test_points_at_the_approval_tasks_required_actions_page(self) -> None:
        link = approval_link(self.approve_task(), "selfheal_repair", "manual__1", "https://airflow.example/")
        assert link == (
            "https://airflow.example/dags/selfheal_repair/runs/manual__1/tasks/approve/required_actions"
            "?map_index=-1"
        )

    def test_no_base_url_means_no_link_not_a_failed_page(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
        assert approval_link(self.approve_task(), "d", "r", None) is None
