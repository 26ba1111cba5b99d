"""The ``accepted_values`` rule on the demo project: the failing values join the test's list, in its style."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from airflow_selfheal.core.fixes import jinja_refusal
from tests.support.fixes import (
    STAGING_YML,
    STATUS_VALUES,
    VALUES_FAILED,
    VALUES_INCIDENT,
    VALUES_TEST,
    demo_files,
    escalation_of,
    plan_of,
    propose,
    with_files,
)
from tests.unit.core.fixes.hostile import clean_text, hostile_text

FLOW_VALUES = '                values: ["placed", "shipped", "completed", "returned", "return_pending"]\n'

VALUES_GUARD = """\
{{ config(severity='warn') }}
-- Guard test written by airflow-selfheal for inc-0123456789abcdef.
-- accepted_values_stg_orders_status__placed__shipped__completed__returned__return_pending found values of
-- stg_orders.status outside its accepted list. This warn-level test reports, at raw.orders, the values
-- that stg_orders.status would not accept, before any model reads them.
select lower(status) as value_field, count(*) as n_records
from {{ source('raw', 'orders') }}
where lower(status) not in ('placed', 'shipped', 'completed', 'returned', 'return_pending', 'lost')
group by lower(status)
"""


class TestAcceptedValues:
    def test_new_value_is_accepted(self) -> None:
        plan = plan_of(
            propose(
                VALUES_FAILED,
                the_incident=VALUES_INCIDENT,
                failing_rows=[{"VALUE_FIELD": "lost", "N_RECORDS": 3}],
            )
        )
        guard = "tests/selfheal_guard_raw_orders_status_values.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("accepted_values", "review", 6)
        assert plan.changes == {
            STAGING_YML: demo_files()[STAGING_YML].replace(
                FLOW_VALUES, FLOW_VALUES.replace('"return_pending"]', '"return_pending", "lost"]')
            ),
            guard: VALUES_GUARD,
        }
        assert plan.guard_tests == {guard: VALUES_GUARD}
        assert "with new value(s) 'lost' (3 rows)" in plan.rationale

    def test_block_list_gets_a_line_per_value(self) -> None:
        block = "                values:\n" + "".join(
            f"                  - {value}\n" for value in STATUS_VALUES
        )
        staging = demo_files()[STAGING_YML].replace(FLOW_VALUES, block)
        plan = plan_of(
            propose(
                VALUES_FAILED,
                the_incident=VALUES_INCIDENT,
                files=with_files({STAGING_YML: staging}),
                failing_rows=[{"value_field": "lost"}, {"value_field": "on hold"}, {"value_field": "yes"}],
            )
        )
        assert plan.changes[STAGING_YML] == staging.replace(
            "                  - return_pending\n",
            "                  - return_pending\n                  - lost\n                  - on hold\n"
            '                  - "yes"\n',
        )

    @pytest.mark.parametrize(
        ("rows", "reason"),
        [
            pytest.param([], "no failing values were given", id="no-rows"),
            pytest.param([{"VALUE_FIELD": "placed"}], "are already accepted", id="already-accepted"),
        ],
    )
    def test_escalates(self, rows: list[dict[str, Any]], reason: str) -> None:
        outcome = propose(VALUES_FAILED, the_incident=VALUES_INCIDENT, failing_rows=rows)
        assert reason in escalation_of(outcome).reason


class TestTextFromOutside:
    @settings(max_examples=40)
    @given(hostile_text())
    def test_a_hostile_failing_value_escalates_with_the_reason(self, value: str) -> None:
        rows = [{"VALUE_FIELD": "lost", "N_RECORDS": 3}, {"VALUE_FIELD": value, "N_RECORDS": 1}]
        escalation = escalation_of(propose(VALUES_FAILED, the_incident=VALUES_INCIDENT, failing_rows=rows))
        assert escalation.fix_type == "accepted_values"
        assert escalation.reason.startswith(f"refusing the failing value of {VALUES_TEST} ")
        assert "it holds the Jinja delimiter" in escalation.reason

    @settings(max_examples=40)
    @given(
        clean_text.filter(lambda value: value.strip() and value.isprintable() and value not in STATUS_VALUES)
    )
    def test_a_clean_failing_value_is_written_as_data(self, value: str) -> None:
        plan = plan_of(
            propose(VALUES_FAILED, the_incident=VALUES_INCIDENT, failing_rows=[{"VALUE_FIELD": value}])
        )
        assert jinja_refusal(plan.changes, demo_files()) is None
