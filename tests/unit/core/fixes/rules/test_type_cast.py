"""The ``type_cast`` rule on the demo project: casts back to the old type and the guard that matches the cast."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.fixes import (
    STG_PAYMENTS,
    assert_sql_intact,
    demo_files,
    drift_triage,
    escalation_of,
    plan_of,
    propose,
    with_files,
)
from tests.unit.core.fixes.hostile import hostile_name

TYPE_CHANGE = drift_triage(
    "upstream_type_change",
    "type_mismatch",
    kind="column_type_changed",
    table="RAW.PAYMENTS",
    column="AMOUNT",
    old_type="NUMBER(10,2)",
    new_type="VARCHAR(16777216)",
)

CAST_STG_PAYMENTS = """\
select
    payment_id,
    order_id,
    payment_method,
    try_cast(amount as number(10, 2)) as amount,
    created_at as paid_at
from {{ source('raw', 'payments') }}
"""

CAST_GUARD = """\
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. raw.payments.AMOUNT changed type from
-- NUMBER(10,2) to VARCHAR(16777216), and the models cast it back with try_cast. This test returns the
-- values that do not convert to number(10, 2), which try_cast would otherwise turn into silent nulls.
select AMOUNT
from {{ source('raw', 'payments') }}
where AMOUNT is not null
    and try_cast(AMOUNT as number(10, 2)) is null
"""


class TestTypeCast:
    def test_demo_staging_model(self) -> None:
        plan = plan_of(propose(TYPE_CHANGE))
        guard = "tests/selfheal_guard_raw_payments_amount_castable.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("type_cast", "auto", 2)
        assert plan.changes == {STG_PAYMENTS: CAST_STG_PAYMENTS, guard: CAST_GUARD}
        assert plan.guard_tests == {guard: CAST_GUARD}
        assert_sql_intact(demo_files()[STG_PAYMENTS], plan.changes[STG_PAYMENTS])
        assert "raw.payments.AMOUNT changed type from NUMBER(10,2) to VARCHAR(16777216)" in plan.rationale

    def test_every_reference_is_cast(self) -> None:
        model = (
            "with source as (select * from {{ source('raw', 'payments') }})\n"
            "select payment_id, amount * 100 as cents, amount from source where amount > 0\n"
        )
        plan = plan_of(propose(TYPE_CHANGE, files=with_files({STG_PAYMENTS: model})))
        assert plan.changes[STG_PAYMENTS] == (
            "with source as (select * from {{ source('raw', 'payments') }})\n"
            "select payment_id, try_cast(amount as number(10, 2)) * 100 as cents, "
            "try_cast(amount as number(10, 2)) as amount from source where try_cast(amount as number(10, 2)) > 0\n"
        )

    def test_non_string_input_uses_cast_and_a_presence_guard(self) -> None:
        triage = drift_triage(
            "upstream_type_change",
            "type_mismatch",
            kind="column_type_changed",
            table="RAW.PAYMENTS",
            column="AMOUNT",
            old_type="NUMBER(10,2)",
            new_type="FLOAT",
        )
        plan = plan_of(propose(triage))
        assert "    cast(amount as number(10, 2)) as amount,\n" in plan.changes[STG_PAYMENTS]
        guard = plan.changes["tests/selfheal_guard_raw_payments_columns.sql"]
        assert guard.endswith(
            "select\n    PAYMENT_ID,\n    ORDER_ID,\n    PAYMENT_METHOD,\n    AMOUNT,\n    CREATED_AT\n"
            "from {{ source('raw', 'payments') }}\nwhere false\n"
        )
        assert "try_cast accepts only string input" in plan.rationale

    def test_star_escalates(self) -> None:
        escalation = escalation_of(
            propose(
                TYPE_CHANGE,
                files=with_files({STG_PAYMENTS: "select * from {{ source('raw', 'payments') }}"}),
            )
        )
        assert escalation.reason.startswith(f"{STG_PAYMENTS} selects * from raw.payments")


class TestTextFromOutside:
    @settings(max_examples=40)
    @given(
        hostile_name,
        st.sampled_from(
            [("column", "the column name"), ("old_type", "the old type"), ("new_type", "the new type")]
        ),
    )
    def test_a_hostile_name_or_type_escalates_with_the_reason(
        self, text: str, field: tuple[str, str]
    ) -> None:
        triage = copy.deepcopy(TYPE_CHANGE)
        triage["root_cause"]["evidence"][field[0]] = text
        escalation = escalation_of(propose(triage))
        assert escalation.fix_type == "type_cast"
        assert escalation.reason.startswith(f"refusing {field[1]} of the type change ")
        assert "it holds the Jinja delimiter" in escalation.reason

    def test_a_type_with_trailing_code_is_refused(self) -> None:
        # sqlglot would read this as NUMBER(10,2) and drop the rest; the rewriter would have written all of it.
        triage = copy.deepcopy(TYPE_CHANGE)
        triage["root_cause"]["evidence"]["old_type"] = (
            "NUMBER(10,2)) ~ run_query('drop table raw.payments') ~ ("
        )
        assert escalation_of(propose(triage)).reason.endswith("is not a type the rewriter can cast to")
