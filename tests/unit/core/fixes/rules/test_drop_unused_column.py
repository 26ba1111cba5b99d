"""The ``drop_unused_column`` rule on the demo project: removal layouts, YAML entries, and users downstream."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings

from tests.support.fixes import (
    SOURCES_YML,
    STAGING_YML,
    STG_CUSTOMERS,
    add_model,
    assert_sql_intact,
    demo_files,
    drift_triage,
    escalation_of,
    manifest_slice,
    plan_of,
    propose,
    with_files,
)
from tests.unit.core.fixes.hostile import hostile_name

LEGACY_REMOVED = drift_triage(
    "upstream_column_removed",
    "missing_column",
    kind="column_removed",
    table="RAW.CUSTOMERS",
    column="LEGACY_SEGMENT",
)
EMAIL_REMOVED = drift_triage(
    "upstream_column_removed",
    "missing_column",
    kind="column_removed",
    table="RAW.ORDERS",
    column="CUSTOMER_EMAIL",
)

DROP_GUARD = """\
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. raw.customers.LEGACY_SEGMENT was
-- removed upstream. This test reads the columns of raw.customers that the models use and returns no rows,
-- so `dbt build` fails here, naming the source, if one of them is renamed or dropped again.
select
    CUSTOMER_ID,
    FIRST_NAME,
    LAST_NAME,
    EMAIL,
    CREATED_AT
from {{ source('raw', 'customers') }}
where false
"""


def stg_customers_with_legacy() -> str:
    original = demo_files()[STG_CUSTOMERS]
    return original.replace("    created_at\n", "    legacy_segment,\n    created_at\n")


class TestDropUnusedColumn:
    def test_unused_column_is_removed(self) -> None:
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy()})
        plan = plan_of(propose(LEGACY_REMOVED, files=files))
        demo = demo_files()
        guard = "tests/selfheal_guard_raw_customers_columns.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("drop_unused_column", "auto", 3)
        assert set(plan.changes) == {STG_CUSTOMERS, SOURCES_YML, guard}
        assert plan.changes[STG_CUSTOMERS] == demo[STG_CUSTOMERS]  # exactly the demo model without the line
        assert plan.changes[SOURCES_YML] == demo[SOURCES_YML].replace(
            "          - name: LEGACY_SEGMENT\n"
            "            description: Segment from the retired CRM; kept by the upstream, read by no model.\n",
            "",
        )
        assert plan.guard_tests == {guard: DROP_GUARD}
        assert "raw.customers lost column LEGACY_SEGMENT." in plan.rationale

    def test_model_properties_entry_is_removed_too(self) -> None:
        staging = demo_files()[STAGING_YML]
        entry = "      - name: legacy_segment\n        description: Segment from the retired CRM.\n"
        with_entry = staging.replace("      - name: full_name\n", entry + "      - name: full_name\n")
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy(), STAGING_YML: with_entry})
        plan = plan_of(propose(LEGACY_REMOVED, files=files))
        assert plan.changes[STAGING_YML] == staging

    def test_used_column_escalates_naming_the_users(self) -> None:
        escalation = escalation_of(propose(EMAIL_REMOVED))
        assert escalation.reason == (
            "raw.orders.CUSTOMER_EMAIL was removed upstream, but it is still used by model dim_customers, "
            "model fct_orders, test not_null_stg_orders_customer_email; a person must decide what replaces it"
        )

    def test_use_behind_a_select_star_is_found(self) -> None:
        manifest = manifest_slice()
        add_model(manifest, "customers_wide", "models/marts/customers_wide.sql", ["stg_customers"])
        add_model(manifest, "segments", "models/marts/segments.sql", ["customers_wide"])
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy()})
        files["models/marts/customers_wide.sql"] = "select w.* from {{ ref('stg_customers') }} as w\n"
        files["models/marts/segments.sql"] = (
            "select legacy_segment, count(*) as n from {{ ref('customers_wide') }} group by 1\n"
        )
        escalation = escalation_of(propose(LEGACY_REMOVED, files=files, manifest=manifest))
        assert "still used by model segments;" in escalation.reason
        assert "customers_wide" not in escalation.reason

    @pytest.mark.parametrize(
        ("select_list", "expected"),
        [
            pytest.param(
                "    customer_id,\n    legacy_segment,  -- from the old CRM\n    email\n",
                "    customer_id,\n    email\n",
                id="own-line-with-comment",
            ),
            pytest.param(
                "    customer_id,\n    email, -- account email\n    legacy_segment as segment\n",
                "    customer_id,\n    email -- account email\n",
                id="last-item-keeps-previous-comment",
            ),
            pytest.param(
                "    legacy_segment\n  , customer_id\n  , email\n",
                "   customer_id\n  , email\n",
                id="leading-commas",
            ),
            pytest.param(
                "    customer_id, legacy_segment, email\n", "    customer_id, email\n", id="inline-middle"
            ),
            pytest.param(
                "    customer_id, email, legacy_segment\n", "    customer_id, email\n", id="inline-last"
            ),
        ],
    )
    def test_removal_layouts(self, select_list: str, expected: str) -> None:
        source = "from {{ source('raw', 'customers') }}\n"
        model = f"select\n{select_list}{source}"
        plan = plan_of(propose(LEGACY_REMOVED, files=with_files({STG_CUSTOMERS: model})))
        assert plan.changes[STG_CUSTOMERS] == f"select\n{expected}{source}"
        assert_sql_intact(model, plan.changes[STG_CUSTOMERS])

    @pytest.mark.parametrize(
        ("model", "reason"),
        [
            pytest.param(
                "select customer_id, legacy_segment from {{ source('raw', 'customers') }} where legacy_segment <> 'x'",
                "stg_customers uses LEGACY_SEGMENT in its logic (legacy_segment <> 'x')",
                id="used-in-where",
            ),
            pytest.param(
                "select customer_id, upper(legacy_segment) as segment from {{ source('raw', 'customers') }}",
                "stg_customers uses LEGACY_SEGMENT in its logic (UPPER(legacy_segment))",
                id="used-in-expression",
            ),
            pytest.param(
                "select legacy_segment from {{ source('raw', 'customers') }}",
                "legacy_segment is the only select item",
                id="only-item",
            ),
        ],
    )
    def test_escalates(self, model: str, reason: str) -> None:
        escalation = escalation_of(propose(LEGACY_REMOVED, files=with_files({STG_CUSTOMERS: model})))
        assert reason in escalation.reason


class TestTextFromOutside:
    @settings(max_examples=40)
    @given(hostile_name)
    def test_a_hostile_column_name_escalates_with_the_reason(self, name: str) -> None:
        triage = copy.deepcopy(LEGACY_REMOVED)
        triage["root_cause"]["evidence"]["column"] = name
        escalation = escalation_of(propose(triage))
        assert escalation.fix_type == "drop_unused_column"
        assert escalation.reason.startswith("refusing the removed column's name ")
        assert "it holds the Jinja delimiter" in escalation.reason
