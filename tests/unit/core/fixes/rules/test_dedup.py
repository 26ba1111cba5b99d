"""The ``dedup`` rule on the demo project: where the ``qualify`` goes, what it orders by, when it escalates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from airflow_selfheal.core.fixes import jinja_refusal
from tests.support.fixes import (
    STG_ORDERS,
    UNIQUE_FAILED,
    UNIQUE_INCIDENT,
    UNIQUE_TEST,
    assert_sql_intact,
    demo_files,
    escalation_of,
    incident,
    manifest_slice,
    node_id_of_test,
    plan_of,
    propose,
    unique_id,
    with_files,
)
from tests.unit.core.fixes.hostile import hostile_text

DEDUP_STG_ORDERS = """\
select
    order_id,
    customer_id,
    order_date,
    lower(status) as status,
    customer_email,
    _loaded_at as loaded_at
from {{ source('raw', 'orders') }}
qualify row_number() over (partition by order_id order by _loaded_at desc) = 1
"""

DEDUP_GUARD = """\
{{ config(severity='warn') }}
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. unique_stg_orders_order_id found
-- duplicate order_id values in stg_orders, which now keeps one row per key. This warn-level test reports
-- the duplicate ORDER_ID values arriving in raw.orders, so they stay visible at the source instead of
-- being silently dropped.
select ORDER_ID, count(*) as copies
from {{ source('raw', 'orders') }}
group by ORDER_ID
having count(*) > 1
"""

CTE_STAGING = """\
with source as (
    select * from {{ source('raw', 'orders') }}
),

renamed as (
    select
        order_id,
        customer_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
"""


class TestDedup:
    def test_demo_staging_model(self) -> None:
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT))
        guard = "tests/selfheal_guard_raw_orders_order_id_duplicates.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("dedup", "review", 5)
        assert plan.changes == {STG_ORDERS: DEDUP_STG_ORDERS, guard: DEDUP_GUARD}
        assert plan.guard_tests == {guard: DEDUP_GUARD}
        assert_sql_intact(demo_files()[STG_ORDERS], DEDUP_STG_ORDERS)
        assert "unique test unique_stg_orders_order_id failed on stg_orders.order_id" in plan.rationale
        assert "loaded-at column _LOADED_AT, newest first" in plan.rationale

    def test_found_from_the_triage_identifiers_alone(self) -> None:
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=incident()))
        assert plan.changes[STG_ORDERS] == DEDUP_STG_ORDERS

    def test_cte_style_model_orders_by_the_carried_loaded_at(self) -> None:
        plan = plan_of(
            propose(
                UNIQUE_FAILED,
                the_incident=UNIQUE_INCIDENT,
                files=with_files({STG_ORDERS: CTE_STAGING}),
            )
        )
        assert plan.changes[STG_ORDERS] == CTE_STAGING + (
            "qualify row_number() over (partition by order_id order by loaded_at desc) = 1\n"
        )
        assert "group by ORDER_ID" in plan.changes["tests/selfheal_guard_raw_orders_order_id_duplicates.sql"]

    def test_without_loaded_at_orders_by_the_key(self) -> None:
        manifest = manifest_slice()
        manifest["sources"][unique_id("source.raw.orders")]["loaded_at_field"] = None
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT, manifest=manifest))
        assert plan.changes[STG_ORDERS].endswith(
            "qualify row_number() over (partition by order_id order by order_id) = 1\n"
        )
        assert "which duplicate survives is arbitrary" in plan.rationale

    def test_qualify_goes_after_trailing_jinja(self) -> None:
        model = (
            "{{ config(materialized='incremental') }}\n"
            "select order_id, _loaded_at from {{ source('raw', 'orders') }}\n"
            "{% if is_incremental() %}\nwhere _loaded_at > (select max(_loaded_at) from {{ this }})\n{% endif %}\n"
        )
        plan = plan_of(
            propose(
                UNIQUE_FAILED,
                the_incident=UNIQUE_INCIDENT,
                files=with_files({STG_ORDERS: model}),
            )
        )
        assert plan.changes[STG_ORDERS] == model + (
            "qualify row_number() over (partition by order_id order by _loaded_at desc) = 1\n"
        )
        assert_sql_intact(model, plan.changes[STG_ORDERS])

    @pytest.mark.parametrize(
        ("name", "attached", "model", "reason"),
        [
            pytest.param(
                "source_unique_raw_orders_ORDER_ID",
                None,
                None,
                "tests the source itself; the problem is in the raw data",
                id="source-test",
            ),
            pytest.param(
                "unique_fct_orders_order_id",
                "fct_orders",
                None,
                "fct_orders is not a staging model reading exactly one source",
                id="not-staging",
            ),
            pytest.param(
                UNIQUE_TEST,
                None,
                "select order_id, max(customer_id) as customer_id from {{ source('raw', 'orders') }} group by order_id",
                "stg_orders already has a group by clause",
                id="aggregating-model",
            ),
        ],
    )
    def test_escalates(self, name: str, attached: str | None, model: str | None, reason: str) -> None:
        manifest = manifest_slice()
        if attached is not None:
            manifest["nodes"][node_id_of_test(name)] = {
                **manifest["nodes"][node_id_of_test(UNIQUE_TEST)],
                "unique_id": node_id_of_test(name),
                "name": name,
                "attached_node": unique_id(attached),
            }
        files = with_files({STG_ORDERS: model}) if model else None
        outcome = propose(
            {**UNIQUE_FAILED, "identifiers": [name]},
            the_incident=incident((node_id_of_test(name), "test", name)),
            manifest=manifest,
            files=files,
        )
        assert reason in escalation_of(outcome).reason


class TestTextFromOutside:
    @settings(max_examples=25)
    @given(hostile_text())
    def test_the_error_message_reaches_no_file(self, summary: str) -> None:
        # dedup writes nothing taken from outside: the failure's wording only reaches the rationale.
        triage = {**UNIQUE_FAILED, "summary": f"UNIQUE_SUMMARY_MARK {summary}"}
        plan = plan_of(propose(triage, the_incident=UNIQUE_INCIDENT))
        assert jinja_refusal(plan.changes, demo_files()) is None
        assert not any("UNIQUE_SUMMARY_MARK" in text for text in plan.changes.values())
        assert "UNIQUE_SUMMARY_MARK" in plan.rationale
