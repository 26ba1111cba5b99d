"""Every code and code range in the tables is proved by a real message from the corpus under tests/data/triage."""

from __future__ import annotations

import re
import re._parser as sre_parse
from typing import Any

import pytest

from airflow_selfheal.core.triage import FailureClass, classify
from airflow_selfheal.core.triage.codes import (
    CONNECTOR_CODES,
    DUCKDB_TYPES,
    FUSION_CODES,
    FUSION_RANGES,
    SNOWFLAKE_CODES,
    SQLSTATE_CLASSES,
    SQLSTATES,
    code_verdict,
    duckdb_type,
    sqlstate_verdict,
)
from airflow_selfheal.core.triage.rules import _BEFORE_NEEDLE, RULES
from tests.unit.core.triage.test_classifier import UNAMBIGUOUS

_CODE = re.compile(r"(?<![\w.])(\d{6})(?: \(([0-9A-Z]{5})\))?:")


def _real(predicate: Any) -> list[dict[str, Any]]:
    return [entry for entry in UNAMBIGUOUS if predicate(entry)]


def _proof(key: str, verdict_of: Any, expected: FailureClass, predicate: Any) -> None:
    """Some real message carries the key, the table's verdict on it is its class, and that is its label."""
    carriers = _real(predicate)
    assert carriers, f"no corpus message carries {key}"
    agreeing = [
        entry
        for entry in carriers
        if (verdict := verdict_of(entry["text"])) is not None
        and verdict.failure_class is expected
        and entry["expected_class"] == expected.value
    ]
    assert agreeing, (
        f"{key}: no real message where the table's {expected.value} is the label: {[e['id'] for e in carriers]}"
    )


@pytest.mark.parametrize("code", sorted(SNOWFLAKE_CODES))
def test_snowflake_code(code: str) -> None:
    _proof(
        code, code_verdict, SNOWFLAKE_CODES[code].failure_class, lambda entry: f"{code} (" in entry["text"]
    )


@pytest.mark.parametrize("code", sorted(CONNECTOR_CODES))
def test_connector_code(code: str) -> None:
    _proof(code, code_verdict, CONNECTOR_CODES[code], lambda entry: re.search(rf"\b{code}\b", entry["text"]))


def test_the_100xxx_data_error_range() -> None:
    def in_range(entry: dict[str, Any]) -> bool:
        return any(
            code.startswith("100") and state.startswith("22") and code not in SNOWFLAKE_CODES
            for code, state in _CODE.findall(entry["text"])
        )

    carriers = _real(in_range)
    codes = {code for entry in carriers for code, _ in _CODE.findall(entry["text"]) if code.startswith("100")}
    assert len(codes) >= 5, f"the range is proved by only {sorted(codes)}"
    for entry in carriers:
        verdict = code_verdict(entry["text"])
        if verdict is not None and verdict.signal.endswith("(data error)"):
            assert entry["expected_class"] == "type_mismatch", entry["id"]


@pytest.mark.parametrize("state", sorted(SQLSTATES))
def test_sqlstate(state: str) -> None:
    _proof(state, sqlstate_verdict, SQLSTATES[state], lambda entry: f"({state})" in entry["text"])


@pytest.mark.parametrize("prefix", sorted(SQLSTATE_CLASSES))
def test_sqlstate_class(prefix: str) -> None:
    _proof(
        f"class {prefix}",
        sqlstate_verdict,
        SQLSTATE_CLASSES[prefix],
        lambda entry: (
            re.search(rf"\({prefix}[0-9A-Z]{{3}}\)", entry["text"])
            and not any(f"({state})" in entry["text"] for state in SQLSTATES)
        ),
    )


def _carries_fusion(number: int) -> Any:
    return lambda entry: re.search(rf"\bdbt0?{number}\b", entry["text"])


@pytest.mark.parametrize("number", sorted(number for number, meaning in FUSION_CODES.items() if meaning))
def test_fusion_code(number: int) -> None:
    expected = FUSION_CODES[number]
    assert expected is not None
    _proof(f"dbt{number:04d}", code_verdict, expected, _carries_fusion(number))


@pytest.mark.parametrize(
    "number", sorted(number for number, meaning in FUSION_CODES.items() if meaning is None)
)
def test_fusion_code_that_leaves_the_decision_to_the_text(number: int) -> None:
    carriers = _real(_carries_fusion(number))
    assert carriers, f"no corpus message carries dbt{number:04d}"
    verdicts = [code_verdict(entry["text"]) for entry in carriers]
    assert all(verdict is None or not verdict.signal.startswith("code dbt") for verdict in verdicts)
    # It wraps errors of several classes, which is why it decides nothing.
    assert len({entry["expected_class"] for entry in carriers}) >= 2


@pytest.mark.parametrize(("codes", "expected"), FUSION_RANGES, ids=lambda value: str(value))
def test_fusion_code_range(codes: range, expected: FailureClass) -> None:
    def in_range(entry: dict[str, Any]) -> bool:
        return any(
            int(number) in codes and int(number) not in FUSION_CODES
            for number in re.findall(r"\bdbt(\d{3,4})\b", entry["text"])
        )

    _proof(f"dbt{codes.start}-{codes.stop - 1}", code_verdict, expected, in_range)


@pytest.mark.parametrize("name", sorted(DUCKDB_TYPES))
def test_duckdb_error_type(name: str) -> None:
    _proof(f"{name} Error", duckdb_type, DUCKDB_TYPES[name], lambda entry: f"{name} Error: " in entry["text"])


def test_a_code_around_duckdb_wording_decides_nothing() -> None:
    text = '002043 (02000): Binder Error: Referenced column "X" not found in FROM clause!'
    assert code_verdict(text) is None
    triage = classify(text)
    assert triage.failure_class is FailureClass.MISSING_COLUMN
    assert triage.signal == "pattern duckdb_column_not_found"


def test_a_code_inside_a_longer_number_is_not_a_code() -> None:
    assert code_verdict("Processing aborted due to error 1000038: internal") is None
    assert code_verdict("ref 9100038 (22018): nothing") is None


def test_a_generic_code_leaves_the_decision_to_the_text() -> None:
    triage = classify(
        "000603 (XX000): SQL execution internal error:\nProcessing aborted due to error 300005:1; incident 1."
    )
    assert triage.failure_class is FailureClass.RESOURCE
    assert triage.signal == "pattern sf_out_of_memory"


def test_every_rule_has_needles_and_reaches_no_further_than_the_search_margin() -> None:
    for rule in RULES:
        assert rule.needles, f"{rule.rule_id} has no literal to look for: it would run the regex on every log"
        assert all(len(needle) >= 3 for needle in rule.needles), rule.rule_id
        _, widest = sre_parse.parse(rule.pattern.pattern, re.IGNORECASE).getwidth()
        assert widest <= _BEFORE_NEEDLE, f"{rule.rule_id} can match {widest} characters"
