from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_selfheal.core.triage import POLICIES, SUMMARY_MAX_CHARS, Action, FailureClass, classify
from tests.unit.core.triage.samples import SF_MISSING_COLUMN

CORPUS_DIR = Path(__file__).parents[3] / "data" / "triage"
CORPUS: list[dict[str, Any]] = [
    entry
    for path in sorted(CORPUS_DIR.glob("*.yaml"))
    for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["entries"]
]
UNAMBIGUOUS = [entry for entry in CORPUS if entry["expected_class"] != "ambiguous"]
ENGINES = {"snowflake", "fakesnow", "duckdb", "dbt", "dbt-fusion", "network", "airflow"}


def corpus_cases() -> list[Any]:
    return [pytest.param(entry, id=entry["id"]) for entry in UNAMBIGUOUS]


def classify_entry(entry: dict[str, Any], text: str | None = None) -> Any:
    return classify(
        entry["text"] if text is None else text,
        resource_type=entry.get("resource_type"),
        test_name=entry.get("test_name"),
        status=entry.get("status"),
    )


class TestClassify:
    @pytest.mark.parametrize("entry", corpus_cases())
    def test_corpus_entry(self, entry: dict[str, Any]) -> None:
        triage = classify_entry(entry)
        assert triage.failure_class.value == entry["expected_class"], triage.signal
        expected_identifiers = entry.get("expected_identifiers")
        if expected_identifiers:
            assert list(triage.identifiers[: len(expected_identifiers)]) == expected_identifiers
        assert triage.action in (POLICIES[triage.failure_class].action, Action.ESCALATE)
        assert triage.summary
        assert "\n" not in triage.summary
        if triage.failure_class is FailureClass.UNKNOWN:
            assert (triage.signal, triage.confidence) == ("none", 0.0)
        else:
            assert triage.signal != "none"
            assert 0 < triage.confidence <= 1

    def test_corpus_is_large_sourced_and_covers_every_class(self) -> None:
        assert len(UNAMBIGUOUS) >= 200
        assert len({entry["id"] for entry in CORPUS}) == len(CORPUS)
        assert all(entry.get("source") for entry in CORPUS)
        assert {entry["engine"] for entry in CORPUS} <= ENGINES
        counts = Counter(entry["expected_class"] for entry in UNAMBIGUOUS)
        missing = {failure_class.value for failure_class in FailureClass} - set(counts)
        assert not missing, f"corpus lacks {sorted(missing)}"

    @pytest.mark.parametrize(
        "failure_class",
        ["missing_column", "missing_relation", "type_mismatch", "compile_error", "permission"],
    )
    def test_each_failure_is_known_in_snowflake_s_and_the_stand_in_s_wording(
        self, failure_class: str
    ) -> None:
        engines = {entry["engine"] for entry in UNAMBIGUOUS if entry["expected_class"] == failure_class}
        assert "snowflake" in engines
        assert engines & {"fakesnow", "duckdb"}, f"{failure_class} only in {sorted(engines)}"

    def test_dbt_fusion_codes_are_in_the_corpus(self) -> None:
        fusion = [entry for entry in UNAMBIGUOUS if entry["engine"] == "dbt-fusion"]
        assert len(fusion) >= 10
        assert all(classify_entry(entry).failure_class.value == entry["expected_class"] for entry in fusion)

    def test_ambiguous_entries_name_their_candidates(self) -> None:
        ambiguous = [entry for entry in CORPUS if entry["expected_class"] == "ambiguous"]
        assert ambiguous
        for entry in ambiguous:
            assert len(entry.get("candidates") or []) >= 2, entry["id"]

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
