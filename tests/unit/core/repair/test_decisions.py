"""The repair loop's pure decisions: the triage branch, the attempt loop, the approver, the outcome."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.core.repair.decisions import approver, attempt_decision, decide_outcome, triage_decision
from airflow_selfheal.core.repair.selectors import failed_selector
from tests.support.incidents import RENAME_ERROR, make_incident


class TestTriageDecision:
    def test_recorded_rename_is_repaired(self) -> None:
        from airflow_selfheal.core.triage import classify

        triage = classify(RENAME_ERROR, resource_type="model").to_dict()
        decided = triage_decision(make_incident(triage=triage))
        assert (decided["action"], decided["branch"], decided["select"]) == ("repair", "clone", "stg_orders+")

    @pytest.mark.parametrize(
        ("error", "branch"),
        [
            pytest.param(RENAME_ERROR, "clone", id="missing-column"),
            pytest.param(
                "250001: Could not connect to Snowflake backend after 2 attempt(s)", "retry", id="transient"
            ),
            pytest.param("something nobody has seen before", "escalate", id="unknown"),
        ],
    )
    def test_classified_when_not_recorded(self, error: str, branch: str) -> None:
        assert triage_decision(make_incident(error=error, triage=None))["branch"] == branch

    def test_no_node_escalates(self) -> None:
        decided = triage_decision(make_incident(nodes=[]))
        assert (decided["branch"], decided["select"]) == ("escalate", "")

    def test_selector_names_every_node_once(self) -> None:
        nodes = [{"name": "a"}, {"name": "b"}, {"name": "a"}]
        assert failed_selector({"nodes": nodes}) == "a+ b+"


class TestAttemptDecision:
    @pytest.mark.parametrize(
        ("signatures", "success", "expected"),
        [
            pytest.param([], True, "proposal", id="first-pass"),
            pytest.param(["x"], True, "proposal", id="second-pass"),
            pytest.param(["x"], False, "retry", id="one-failure"),
            pytest.param(["x", "x"], False, "escalate_same_error", id="same-twice"),
            pytest.param(["x", "y"], False, "escalate_attempts", id="limit"),
        ],
    )
    def test_decision(self, signatures: list[str], success: bool, expected: str) -> None:
        assert attempt_decision(signatures, success, 2) == expected

    def test_same_error_twice_wins_over_a_higher_limit(self) -> None:
        assert attempt_decision(["x", "x"], False, 5) == "escalate_same_error"
        assert attempt_decision(["x", "y"], False, 5) == "retry"


class TestApprover:
    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            pytest.param(
                {"chosen_options": ["Approve"], "responded_by_user": {"id": "jane", "name": "Jane Doe"}},
                (True, "Jane Doe <jane@selfheal>"),
                id="approve",
            ),
            pytest.param(
                {"chosen_options": ["Reject"], "responded_by_user": {"id": "j", "name": "J"}},
                (False, "J <j@selfheal>"),
                id="reject",
            ),
            pytest.param(None, (False, "unknown <selfheal@localhost>"), id="none"),
        ],
    )
    def test_approver(self, response: dict[str, Any] | None, expected: tuple[bool, str]) -> None:
        from airflow_selfheal.hooks.git import parse_author

        assert approver(response) == expected
        parse_author(expected[1])  # a valid commit author


class TestDecideOutcome:
    @pytest.mark.parametrize(
        ("results", "outcome"),
        [
            pytest.param({"rerun": {"success": True}}, "resolved", id="resolved"),
            pytest.param({"rerun": {"success": False}}, "promoted_rerun_failed", id="rerun-failed"),
            pytest.param({"retry": {"success": True}}, "retried", id="retried"),
            pytest.param({"approve": {"chosen_options": ["Reject"]}}, "rejected", id="rejected"),
            pytest.param({"escalate": {"reason": "x"}}, "escalated", id="escalated"),
            pytest.param({"validate": {"status": "escalate"}}, "escalated", id="invalid"),
            pytest.param({"validate": {"status": "proposal"}}, "timed_out_or_failed", id="timeout"),
            pytest.param({"states": {"approve": "failed"}}, "timed_out", id="timed-out"),
            pytest.param(
                {"states": {"approve": "success", "promote": "skipped"}}, "rejected", id="rejected-no-xcom"
            ),
            pytest.param({}, "failed", id="nothing"),
        ],
    )
    def test_outcome(self, results: dict[str, Any], outcome: str) -> None:
        assert decide_outcome(results) == outcome
