"""``FixPlan`` and ``Escalation``: their dict round trip and the plan's own checks."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.fixes import Escalation, FixPlan
from tests.support.fixes import RENAME, plan_of, propose


class TestPlanModel:
    def test_plan_and_escalation_round_trip(self) -> None:
        import json

        plan = plan_of(propose(RENAME))
        assert FixPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
        escalation = Escalation("why", "dedup")
        assert Escalation.from_dict(json.loads(json.dumps(escalation.to_dict()))) == escalation

    def test_plan_requires_guards_inside_changes(self) -> None:
        with pytest.raises(ValueError, match="guard test tests/g.sql must also be in changes"):
            FixPlan("dedup", "review", "why", {}, {"tests/g.sql": "select 1"}, 5)
