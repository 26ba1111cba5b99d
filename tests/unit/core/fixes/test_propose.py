"""``propose_fix`` on the demo project: which rule a failure gets, and the rules file's policy on the result."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.fixes import Escalation
from airflow_selfheal.core.rules import RulesConfig, load_rules
from tests.support.fixes import (
    ORDERS_GUARD,
    RENAME,
    STG_ORDERS,
    UNIQUE_FAILED,
    UNIQUE_INCIDENT,
    VALUES_FAILED,
    VALUES_INCIDENT,
    demo_files,
    drift_triage,
    escalation_of,
    manifest_slice,
    plan_of,
    propose,
)


class TestPolicy:
    @pytest.mark.parametrize(
        ("failure_class", "reason"),
        [
            pytest.param("missing_column", "no deterministic rule for missing_column", id="no-root-cause"),
            pytest.param("test_not_null", "no deterministic rule for test_not_null", id="not-null"),
            pytest.param("unknown", "no deterministic rule for unknown", id="unknown"),
        ],
    )
    def test_classes_without_a_rule(self, failure_class: str, reason: str) -> None:
        triage = {"failure_class": failure_class, "action": "repair", "summary": "", "root_cause": None}
        assert propose(triage) == Escalation(reason)

    def test_fix_type_not_in_auto_propose(self) -> None:
        rules = load_rules("auto_propose: [type_cast]\n")
        assert propose(RENAME, rules=rules) == Escalation(
            "a column_rename fix applies, but auto_propose in .selfheal/rules.yml does not list column_rename",
            "column_rename",
        )

    def test_protected_model(self) -> None:
        rules = load_rules("protected_models: [stg_orders]\n")
        escalation = escalation_of(propose(RENAME, rules=rules))
        assert escalation.reason == (
            "model stg_orders is protected (protected_models in .selfheal/rules.yml); a person must change it"
        )

    def test_protected_model_blocks_test_edits_too(self) -> None:
        rules = load_rules("protected_models: [stg_orders]\n")
        outcome = propose(
            VALUES_FAILED, the_incident=VALUES_INCIDENT, rules=rules, failing_rows=[{"value_field": "lost"}]
        )
        assert "model stg_orders is protected" in escalation_of(outcome).reason

    @pytest.mark.parametrize(
        ("allowed", "path"),
        [
            pytest.param(
                '["models/staging/**", "models/_sources.yml", "models/**/*.yml"]', ORDERS_GUARD, id="guard"
            ),
            pytest.param('["tests/**", "models/**/*.yml"]', STG_ORDERS, id="model"),
        ],
    )
    def test_disallowed_path(self, allowed: str, path: str) -> None:
        rules = load_rules(f"allowed_paths: {allowed}\n")
        assert escalation_of(propose(RENAME, rules=rules)).reason == (
            f"the column_rename fix would change {path}, which allowed_paths in .selfheal/rules.yml does not allow"
        )

    def test_tier_comes_from_the_rules(self) -> None:
        rules = load_rules("review_tier: [column_rename]\n")
        assert plan_of(propose(RENAME, rules=rules)).tier == "review"
        assert plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT, rules=rules)).tier == "auto"

    def test_guard_path_follows_test_paths(self) -> None:
        files = demo_files()
        files["dbt_project.yml"] = files["dbt_project.yml"].replace(
            'test-paths: ["tests"]', 'test-paths: ["checks"]'
        )
        guard = "checks/selfheal_guard_raw_orders_columns.sql"
        # checks/ is outside the writable floor: a glob cannot open it, only the exact path can.
        plan = plan_of(propose(RENAME, files=files, rules=RulesConfig(allowed_paths=("models/**", guard))))
        assert list(plan.guard_tests) == [guard]
        refused = propose(RENAME, files=files, rules=RulesConfig(allowed_paths=("models/**", "checks/**")))
        assert escalation_of(refused).reason.startswith(
            f"the column_rename fix would change {guard}, but the writable floor refuses '{guard}': it is outside "
            "models/, tests/, snapshots/ and seeds/"
        )

    def test_missing_sandbox_file(self) -> None:
        files = demo_files()
        del files[STG_ORDERS]
        assert escalation_of(propose(RENAME, files=files)).reason == (
            f"{STG_ORDERS} is not in the sandbox copy of the project"
        )

    def test_unknown_source_table(self) -> None:
        triage = drift_triage(
            "upstream_rename",
            "missing_column",
            kind="column_renamed",
            table="RAW.NOPE",
            column="A",
            new_column="B",
        )
        assert escalation_of(propose(triage)).reason == "no dbt source in the manifest is the table RAW.NOPE"

    def test_inputs_are_not_mutated(self) -> None:
        import copy

        files, manifest = demo_files(), manifest_slice()
        before = copy.deepcopy((RENAME, files, manifest))
        plan_of(propose(RENAME, files=files, manifest=manifest))
        assert (RENAME, files, manifest) == before
