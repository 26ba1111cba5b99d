"""What validation and the post-promotion re-run build: the nodes a fix edits, their children, the failed nodes."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.core.repair.selectors import promoted_selector, validation_selector
from airflow_selfheal.core.rules import RulesConfig
from tests.support.fixes import (
    INCIDENT_ID,
    RENAME,
    SOURCES_YML,
    STAGING_YML,
    STG_ORDERS,
    STG_ORDERS_INCIDENT,
    demo_files,
    incident,
    manifest_slice,
    node_id_of_test,
    plan_of,
    propose,
)

UNIQUE_TEST = "unique_stg_orders_order_id"
UNIQUE_INCIDENT = incident((node_id_of_test(UNIQUE_TEST), "test", UNIQUE_TEST))
UNIQUE_TRIAGE: dict[str, Any] = {
    "failure_class": "test_unique",
    "action": "repair",
    "summary": "Data test unique_stg_orders_order_id failed: Got 3 results",
    "identifiers": [UNIQUE_TEST],
    "root_cause": None,
}


class TestValidationSelector:
    def test_a_failed_test_rebuilds_the_model_the_fix_edits(self) -> None:
        plan = plan_of(propose(UNIQUE_TRIAGE, the_incident=UNIQUE_INCIDENT))

        select = validation_selector(UNIQUE_INCIDENT, plan.changes, manifest_slice(), demo_files())

        assert STG_ORDERS in plan.changes
        assert select == f"stg_orders+ {UNIQUE_TEST}"

    def test_a_source_yaml_change_selects_that_source_only(self) -> None:
        plan = plan_of(propose(RENAME, rules=RulesConfig(allowed_paths=("**",))))

        select = validation_selector(STG_ORDERS_INCIDENT, plan.changes, manifest_slice(), demo_files())

        assert SOURCES_YML in plan.changes
        # The guard test is new, so the manifest does not know it; the other sources in the file are untouched.
        assert select == "source:raw.orders+ stg_orders+"

    def test_a_model_properties_change_selects_the_changed_entry(self) -> None:
        files = demo_files()
        changed = files[STAGING_YML].replace("return_pending", "return_pending\n              - lost", 1)
        assert changed != files[STAGING_YML]

        select = validation_selector(UNIQUE_INCIDENT, {STAGING_YML: changed}, manifest_slice(), files)

        assert select == f"stg_orders+ {UNIQUE_TEST}"

    def test_unreadable_yaml_selects_everything_it_declares(self) -> None:
        select = validation_selector(
            UNIQUE_INCIDENT, {STAGING_YML: "models: [unclosed"}, manifest_slice(), demo_files()
        )

        assert select.split() == [
            "stg_customers+",
            "stg_order_items+",
            "stg_orders+",
            "stg_payments+",
            "stg_products+",
            UNIQUE_TEST,
        ]

    def test_a_failed_model_keeps_its_children(self) -> None:
        assert validation_selector(STG_ORDERS_INCIDENT, {}, manifest_slice()) == "stg_orders+"

    def test_failed_node_missing_from_the_manifest_still_selects(self) -> None:
        stray = {"incident_id": INCIDENT_ID, "nodes": [{"unique_id": "model.x.gone", "name": "gone"}]}

        assert validation_selector(stray, {}, manifest_slice()) == "gone+"

    def test_nothing_to_select_is_a_clear_error(self) -> None:
        with pytest.raises(ValueError, match="names a dbt node to validate"):
            validation_selector({"incident_id": INCIDENT_ID, "nodes": []}, {}, manifest_slice())


class TestPromotedSelector:
    def test_prod_rebuilds_what_was_validated(self) -> None:
        proposal = {
            "select": f"stg_orders+ {UNIQUE_TEST}",
            "validation": {"select": f"stg_orders+ {UNIQUE_TEST}"},
        }

        assert promoted_selector(proposal, f"{UNIQUE_TEST}+") == f"stg_orders+ {UNIQUE_TEST}"

    @pytest.mark.parametrize(
        ("proposal", "expected"),
        [
            pytest.param({"validation": {"select": "stg_orders+"}}, "stg_orders+", id="validation-only"),
            pytest.param({}, "failed+", id="no-selector"),
            pytest.param(None, "failed+", id="no-proposal"),
        ],
    )
    def test_older_records_still_read(self, proposal: dict[str, Any] | None, expected: str) -> None:
        assert promoted_selector(proposal, "failed+") == expected
