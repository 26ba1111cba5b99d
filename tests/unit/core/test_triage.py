from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_selfheal.core.triage import (
    POLICIES,
    SUMMARY_MAX_CHARS,
    Action,
    FailureClass,
    RootCause,
    Triage,
    classify,
)

CORPUS_PATH = Path(__file__).parents[2] / "data" / "error_corpus.yaml"
CORPUS: list[dict[str, Any]] = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))["entries"]

SF_MISSING_COLUMN = (
    "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
    "  000904 (42000): SQL compilation error: error line 3 at position 4\n"
    "  invalid identifier 'CUSTOMER_EMAIL'\n"
    "  compiled code at target/run/shop/models/staging/stg_orders.sql"
)
FAKESNOW_CONVERSION = (
    "Database Error in model fct_orders (models/marts/fct_orders.sql)\n"
    "  100035 (22007): Conversion Error: Could not convert string 'abc' to INT64 when casting from source column AMOUNT"
)
FAKESNOW_MISSING_TABLE = (
    "Database Error in model m_missing_rel (models/m_missing_rel.sql)\n"
    "  002003 (42S02): Catalog Error: Table with name ORDERS_ARCHIVE does not exist!"
)


def rename_event(
    table: str = "RAW.ORDERS", confidence: float = 0.9, new_column: str = "EMAIL_ADDRESS"
) -> dict[str, Any]:
    return {
        "kind": "column_renamed",
        "table": table,
        "column": "CUSTOMER_EMAIL",
        "new_column": new_column,
        "confidence": confidence,
        "reason": "same type and position",
        "message": f"{table.lower()}.CUSTOMER_EMAIL was renamed to {new_column}.",
    }


def type_change_event(
    column: str, old_type: str = "NUMBER(10,2)", new_type: str = "VARCHAR"
) -> dict[str, Any]:
    return {
        "kind": "column_type_changed",
        "table": "RAW.ORDERS",
        "column": column,
        "old_type": old_type,
        "new_type": new_type,
    }


def corpus_cases() -> list[Any]:
    return [pytest.param(entry, id=entry["id"]) for entry in CORPUS]


class TestClassify:
    @pytest.mark.parametrize("entry", corpus_cases())
    def test_corpus_entry(self, entry: dict[str, Any]) -> None:
        triage = classify(
            entry["text"],
            resource_type=entry.get("resource_type"),
            test_name=entry.get("test_name"),
            status=entry.get("status"),
        )
        assert triage.failure_class.value == entry["expected_class"], triage.matched_rule
        expected_identifiers = entry.get("expected_identifiers")
        if expected_identifiers:
            assert list(triage.identifiers[: len(expected_identifiers)]) == expected_identifiers
        assert triage.action is POLICIES[triage.failure_class].action
        assert triage.summary
        assert "\n" not in triage.summary

    def test_corpus_is_large_and_covers_every_class(self) -> None:
        assert len(CORPUS) >= 40
        assert len({entry["id"] for entry in CORPUS}) == len(CORPUS)
        assert {entry["source"] for entry in CORPUS} <= {"snowflake", "dbt", "duckdb", "fakesnow", "network"}
        counts = Counter(entry["expected_class"] for entry in CORPUS)
        missing = {failure_class.value for failure_class in FailureClass} - set(counts)
        assert not missing, f"corpus lacks {sorted(missing)}"

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

    def test_missing_column_summary_names_column_and_model(self) -> None:
        triage = classify(SF_MISSING_COLUMN, resource_type="model", status="error")
        assert triage.summary == "Column CUSTOMER_EMAIL referenced by stg_orders no longer exists."
        assert triage.error_code == "000904"
        assert triage.matched_rule == "sf_invalid_identifier"
        assert triage.root_cause is None

    def test_error_code_is_the_message_code_not_an_internal_number(self) -> None:
        triage = classify(
            "000603 (XX000): SQL execution internal error:\n"
            "Processing aborted due to error 300005:3923456851; incident 6181347."
        )
        assert triage.failure_class is FailureClass.RESOURCE
        assert triage.error_code == "000603"

    @pytest.mark.parametrize(
        ("test_name", "expected"),
        [
            pytest.param("unique", FailureClass.TEST_UNIQUE, id="unique"),
            pytest.param("not_null", FailureClass.TEST_NOT_NULL, id="not-null"),
            pytest.param("accepted_values", FailureClass.TEST_ACCEPTED_VALUES, id="accepted-values"),
            pytest.param("relationships", FailureClass.TEST_RELATIONSHIPS, id="relationships"),
            pytest.param(
                "dbt_utils.unique_combination_of_columns", FailureClass.TEST_SINGULAR, id="package-test"
            ),
            pytest.param(None, FailureClass.TEST_SINGULAR, id="singular"),
        ],
    )
    def test_test_name_decides_the_test_class(self, test_name: str | None, expected: FailureClass) -> None:
        triage = classify(
            "Got 3 results, configured to fail if != 0",
            resource_type="test",
            test_name=test_name,
            status="fail",
        )
        assert triage.failure_class is expected
        assert triage.matched_rule == "dbt_test_failure"

    def test_failed_test_status_wins_over_noise_in_the_log(self) -> None:
        log = (
            "07:46:01  Retrying request: Read timed out. (read timeout=60)\n"
            "07:46:09  Failure in test not_null_stg_orders_order_id (models/staging/schema.yml)\n"
            "07:46:09    Got 4 results, configured to fail if != 0\n"
        )
        triage = classify(log, resource_type="test", status="fail")
        assert triage.failure_class is FailureClass.TEST_NOT_NULL
        assert triage.identifiers[0] == "not_null_stg_orders_order_id"
        assert triage.summary.startswith("Data test not_null_stg_orders_order_id failed: Got 4 results")

    def test_erroring_test_is_classified_by_its_error(self) -> None:
        text = (
            "Failure in test unique_stg_orders_order_id (models/staging/schema.yml)\n"
            "  Database Error in test unique_stg_orders_order_id (models/staging/schema.yml)\n"
            "  000904 (42000): SQL compilation error: error line 1 at position 7\n"
            "  invalid identifier 'ORDER_ID'"
        )
        triage = classify(text, resource_type="test", status="error")
        assert triage.failure_class is FailureClass.MISSING_COLUMN
        assert triage.identifiers == ("ORDER_ID",)

    def test_freshness_status_without_recognised_text(self) -> None:
        triage = classify("Status: error", resource_type="source", status="error")
        assert triage.failure_class is FailureClass.SOURCE_FRESHNESS
        assert triage.action is Action.ESCALATE
        assert triage.matched_rule == "dbt_source_status"

    def test_unrecognised_text_escalates_with_its_first_line(self) -> None:
        triage = classify("\n\nSomething odd happened\nsecond line")
        assert triage.failure_class is FailureClass.UNKNOWN
        assert triage.action is Action.ESCALATE
        assert triage.matched_rule == "none"
        assert triage.summary == "Unrecognised failure: Something odd happened"


class TestDriftCorrelation:
    def test_rename_explains_missing_column(self) -> None:
        event = rename_event()
        triage = classify(SF_MISSING_COLUMN, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_rename"
        assert triage.root_cause.message == (
            "Upstream rename: RAW.ORDERS.CUSTOMER_EMAIL -> RAW.ORDERS.EMAIL_ADDRESS (confidence 0.90)."
        )
        assert triage.root_cause.evidence == event
        assert "EMAIL_ADDRESS" in triage.summary
        assert triage.summary.startswith("Column CUSTOMER_EMAIL referenced by stg_orders no longer exists")

    def test_match_is_case_insensitive_and_works_on_duckdb_wording(self) -> None:
        event = {**rename_event(), "column": "customer_email"}
        triage = classify(
            'Binder Error: Referenced column "CUSTOMER_EMAIL" not found in FROM clause!', drift_events=[event]
        )
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_rename"

    def test_removed_column_explains_missing_column(self) -> None:
        event = {"kind": "column_removed", "table": "RAW.ORDERS", "column": "CUSTOMER_EMAIL"}
        triage = classify(
            SF_MISSING_COLUMN,
            drift_events=[{"kind": "column_added", "table": "RAW.ORDERS", "column": "X"}, event],
        )
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_column_removed"
        assert triage.root_cause.message == "Upstream column removed: RAW.ORDERS.CUSTOMER_EMAIL."

    def test_higher_confidence_rename_wins(self) -> None:
        weak = rename_event(table="RAW.CUSTOMERS", confidence=0.55, new_column="EMAIL")
        strong = rename_event(table="RAW.ORDERS", confidence=0.9)
        triage = classify(SF_MISSING_COLUMN, drift_events=[weak, strong])
        assert triage.root_cause is not None
        assert triage.root_cause.evidence == strong

    def test_type_change_matched_by_the_column_in_the_error(self) -> None:
        amount = type_change_event("AMOUNT")
        triage = classify(FAKESNOW_CONVERSION, drift_events=[type_change_event("QUANTITY"), amount])
        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_type_change"
        assert triage.root_cause.evidence == amount
        assert triage.root_cause.message == "Upstream type change: RAW.ORDERS.AMOUNT NUMBER(10,2) -> VARCHAR."

    def test_only_type_change_is_used_when_the_error_names_no_column(self) -> None:
        event = type_change_event("AMOUNT")
        triage = classify("100038 (22018): Numeric value 'abc' is not recognized", drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.evidence == event

    def test_ambiguous_type_changes_give_no_root_cause(self) -> None:
        events = [type_change_event("AMOUNT"), type_change_event("QUANTITY")]
        triage = classify("100038 (22018): Numeric value 'abc' is not recognized", drift_events=events)
        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is None

    def test_removed_table_explains_missing_relation(self) -> None:
        event = {"kind": "table_removed", "table": "DEMO.RAW.ORDERS_ARCHIVE"}
        triage = classify(FAKESNOW_MISSING_TABLE, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_table_removed"
        assert triage.root_cause.message == "Upstream table removed: DEMO.RAW.ORDERS_ARCHIVE."

    def test_renamed_table_explains_qualified_missing_relation(self) -> None:
        event = {
            "kind": "table_renamed",
            "table": "RAW.ORDERS",
            "new_table": "RAW.ORDERS_V2",
            "confidence": 0.85,
        }
        text = "002003 (42S02): SQL compilation error:\nObject 'DEMO.RAW.ORDERS' does not exist or not authorized."
        triage = classify(text, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_table_removed"
        assert "RAW.ORDERS_V2" in triage.root_cause.message
        assert "RAW.ORDERS_V2" in triage.summary

    def test_same_table_name_in_another_schema_does_not_match(self) -> None:
        event = {"kind": "table_removed", "table": "STAGING.ORDERS"}
        text = "002003 (42S02): SQL compilation error:\nObject 'DEMO.RAW.ORDERS' does not exist or not authorized."
        assert classify(text, drift_events=[event]).root_cause is None

    @pytest.mark.parametrize(
        ("text", "events"),
        [
            pytest.param(SF_MISSING_COLUMN, [rename_event() | {"column": "OTHER"}], id="other-column"),
            pytest.param(SF_MISSING_COLUMN, [], id="no-events"),
            pytest.param(
                "390114 (08001): Authentication token has expired.", [rename_event()], id="transient"
            ),
            pytest.param(
                SF_MISSING_COLUMN, ["junk", {"table": "RAW.ORDERS"}, {"kind": None}], id="malformed"
            ),
        ],
    )
    def test_no_matching_event_gives_no_root_cause(self, text: str, events: list[Any]) -> None:
        triage = classify(text, drift_events=events)
        assert triage.root_cause is None
        assert "Upstream" not in triage.summary


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


class TestHostileInput:
    def test_huge_log_with_error_at_the_end(self) -> None:
        noise = "07:46:08  1 of 900 START sql view model ANALYTICS.stg_thing ........................ [RUN]\n"
        log = noise * (5_000_000 // len(noise)) + SF_MISSING_COLUMN
        assert len(log) >= 5_000_000
        triage = classify(log)
        assert triage.failure_class is FailureClass.MISSING_COLUMN
        assert triage.identifiers[0] == "CUSTOMER_EMAIL"

    def test_huge_log_with_error_at_the_start(self) -> None:
        log = "390114 (08001): Authentication token has expired.\n" + "x" * 5_000_000
        assert classify(log).failure_class is FailureClass.TRANSIENT

    def test_error_in_the_middle_of_a_huge_log_is_not_read(self) -> None:
        filler = "progress line\n" * 200_000
        triage = classify(filler + SF_MISSING_COLUMN + filler)
        assert triage.failure_class is FailureClass.UNKNOWN

    def test_ansi_colours_are_stripped(self) -> None:
        text = (
            "\x1b[0m07:46:35  2 of 2 \x1b[31mERROR STALE\x1b[0m freshness of raw.orders ....... "
            "[\x1b[31mERROR STALE\x1b[0m in 0.03s]"
        )
        triage = classify(text)
        assert triage.failure_class is FailureClass.SOURCE_FRESHNESS
        assert triage.identifiers == ("raw.orders",)
        assert "\x1b" not in triage.summary

    def test_nul_bytes_are_dropped(self) -> None:
        triage = classify(
            "000904 (42000): SQL compilation error:\x00\ninvalid identifier 'CUSTOMER\x00_EMAIL'\x00"
        )
        assert triage.failure_class is FailureClass.MISSING_COLUMN
        assert triage.identifiers == ("CUSTOMER_EMAIL",)
        assert "\x00" not in json.dumps(triage.to_dict())

    def test_very_long_single_line(self) -> None:
        triage = classify("'" * 3_000_000 + "a" * 3_000_000)
        assert triage.failure_class is FailureClass.UNKNOWN
        assert len(triage.summary) <= SUMMARY_MAX_CHARS

    @pytest.mark.parametrize(
        "fragment",
        [
            pytest.param("invalid identifier '", id="unterminated-identifier"),
            pytest.param("Table with name ", id="repeated-catalog-prefix"),
            pytest.param("depends on a node named '", id="repeated-dependency-prefix"),
            pytest.param("Got 1", id="repeated-test-prefix"),
        ],
    )
    def test_repeated_rule_prefixes_do_not_crash(self, fragment: str) -> None:
        triage = classify(fragment * 100_000)
        assert isinstance(triage.failure_class, FailureClass)
        assert len(triage.summary) <= SUMMARY_MAX_CHARS

    def test_identifier_longer_than_snowflake_allows_is_not_extracted(self) -> None:
        triage = classify("invalid identifier '" + "A" * 10_000 + "'")
        assert triage.failure_class is FailureClass.UNKNOWN
        assert triage.identifiers == ()
        assert len(triage.summary) <= SUMMARY_MAX_CHARS
