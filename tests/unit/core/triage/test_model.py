from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.triage import POLICIES, Action, FailureClass, RootCause, Triage, classify
from tests.unit.core.triage.samples import SF_MISSING_COLUMN, rename_event


class TestPolicies:
    def test_every_class_has_a_policy_with_one_line_description(self) -> None:
        assert set(POLICIES) == set(FailureClass)
        for policy in POLICIES.values():
            assert isinstance(policy.action, Action)
            assert policy.description
            assert "\n" not in policy.description

    @pytest.mark.parametrize(
        ("failure_class", "action"),
        [
            pytest.param(FailureClass.TRANSIENT, Action.RETRY, id="transient-retries"),
            pytest.param(FailureClass.RESOURCE, Action.RETRY, id="resource-retries"),
            pytest.param(FailureClass.MISSING_COLUMN, Action.REPAIR, id="missing-column-repairs"),
            pytest.param(FailureClass.TEST_UNIQUE, Action.REPAIR, id="unique-test-repairs"),
            pytest.param(FailureClass.TEST_SINGULAR, Action.ESCALATE, id="singular-test-escalates"),
            pytest.param(FailureClass.SOURCE_FRESHNESS, Action.ESCALATE, id="freshness-escalates"),
            pytest.param(FailureClass.PERMISSION, Action.ESCALATE, id="permission-escalates"),
            pytest.param(FailureClass.UNKNOWN, Action.ESCALATE, id="unknown-escalates"),
        ],
    )
    def test_recommended_action(self, failure_class: FailureClass, action: Action) -> None:
        assert POLICIES[failure_class].action is action

    def test_resource_retry_is_once_then_escalate(self) -> None:
        description = POLICIES[FailureClass.RESOURCE].description
        assert "once" in description
        assert "escalate" in description


class TestSerialisation:
    def test_round_trip_with_root_cause(self) -> None:
        triage = classify(SF_MISSING_COLUMN, resource_type="model", drift_events=[rename_event()])
        data = triage.to_dict()
        assert data["failure_class"] == "missing_column"
        assert data["action"] == "repair"
        assert data["root_cause"]["kind"] == "upstream_rename"
        assert data["description"] == POLICIES[FailureClass.MISSING_COLUMN].description
        restored = Triage.from_dict(json.loads(json.dumps(data)))
        assert restored == triage

    def test_round_trip_without_root_cause(self) -> None:
        triage = classify("250001: Could not connect to Snowflake backend after 2 attempt(s).Aborting")
        restored = Triage.from_dict(json.loads(json.dumps(triage.to_dict())))
        assert restored == triage
        assert restored.failure_class is FailureClass.TRANSIENT
        assert restored.root_cause is None

    def test_root_cause_round_trip(self) -> None:
        cause = RootCause(
            "upstream_column_removed", "Upstream column removed: RAW.ORDERS.X.", {"kind": "column_removed"}
        )
        assert RootCause.from_dict(cause.to_dict()) == cause
