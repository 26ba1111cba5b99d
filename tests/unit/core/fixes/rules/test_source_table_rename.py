"""The ``source_table_rename`` rule on the demo project: the source's ``identifier`` follows the table."""

from __future__ import annotations

import copy

from hypothesis import given, settings

from tests.support.fixes import (
    ORDERS_GUARD,
    SOURCES_YML,
    demo_files,
    drift_triage,
    escalation_of,
    plan_of,
    propose,
    with_files,
)
from tests.unit.core.fixes.hostile import hostile_name

TABLE_RENAMED = drift_triage(
    "upstream_table_removed",
    "missing_relation",
    kind="table_renamed",
    table="RAW.ORDERS",
    new_table="RAW.ORDERS_V2",
    confidence=1.0,
    reason="same columns 6/6 by name and type; name similarity 0.80",
)


class TestSourceTableRename:
    def test_identifier_is_added(self) -> None:
        plan = plan_of(propose(TABLE_RENAMED))
        demo = demo_files()
        assert (plan.fix_type, plan.tier, plan.priority) == ("source_table_rename", "auto", 4)
        assert set(plan.changes) == {SOURCES_YML, ORDERS_GUARD}
        assert plan.changes[SOURCES_YML] == demo[SOURCES_YML].replace(
            "      - name: orders\n", "      - name: orders\n        identifier: orders_v2\n"
        )
        assert plan.guard_tests[ORDERS_GUARD].endswith(
            "select\n    ORDER_ID,\n    CUSTOMER_ID,\n    ORDER_DATE,\n    STATUS,\n    CUSTOMER_EMAIL,\n"
            "    _LOADED_AT\nfrom {{ source('raw', 'orders') }}\nwhere false\n"
        )
        assert "raw.orders was renamed to raw.orders_v2" in plan.rationale

    def test_existing_identifier_is_replaced_in_its_style(self) -> None:
        demo = demo_files()[SOURCES_YML]
        before = demo.replace(
            "      - name: orders\n", "      - name: orders\n        identifier: 'orders_2024'  # moved\n"
        )
        plan = plan_of(propose(TABLE_RENAMED, files=with_files({SOURCES_YML: before})))
        assert plan.changes[SOURCES_YML] == before.replace("'orders_2024'", "'orders_v2'")

    def test_schema_move_escalates(self) -> None:
        triage = drift_triage(
            "upstream_table_removed",
            "missing_relation",
            kind="table_renamed",
            table="RAW.ORDERS",
            new_table="RAW2.ORDERS",
        )
        assert "moved from schema RAW to RAW2" in escalation_of(propose(triage)).reason

    def test_removed_table_has_no_rule(self) -> None:
        triage = drift_triage(
            "upstream_table_removed", "missing_relation", kind="table_removed", table="RAW.ORDERS"
        )
        escalation = escalation_of(propose(triage))
        assert escalation.reason.startswith("no deterministic rule for upstream_table_removed")
        assert escalation.fix_type is None


class TestTextFromOutside:
    @settings(max_examples=40)
    @given(hostile_name)
    def test_a_hostile_table_name_escalates_with_the_reason(self, name: str) -> None:
        triage = copy.deepcopy(TABLE_RENAMED)
        triage["root_cause"]["evidence"]["new_table"] = f"RAW.{name}"
        escalation = escalation_of(propose(triage))
        assert escalation.fix_type == "source_table_rename"
        assert escalation.reason.startswith("refusing the new table name of the rename ")
        assert "it holds the Jinja delimiter" in escalation.reason
