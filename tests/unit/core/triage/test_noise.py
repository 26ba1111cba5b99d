"""The classifier reads the same message however it was carried: log prefixes, JSON lines, escapes, wrapping."""

from __future__ import annotations

import json
import textwrap
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.core.redaction import redact
from airflow_selfheal.core.triage import FailureClass, classify
from airflow_selfheal.core.triage.noise import flattened, normalise
from tests.unit.core.triage.test_classifier import UNAMBIGUOUS, classify_entry

if TYPE_CHECKING:
    from collections.abc import Callable


def _per_line(prefix: str) -> Callable[[str], str]:
    return lambda text: "\n".join(prefix + line for line in text.split("\n"))


def _dbt_json(text: str) -> str:
    """One dbt structured event per line, as `dbt --log-format json` writes them."""
    return "\n".join(
        json.dumps(
            {
                "info": {"code": "Z024", "level": "error", "msg": line, "ts": "2026-01-01T00:00:00Z"},
                "data": {},
            }
        )
        for line in text.split("\n")
    )


def _airflow3_json(text: str) -> str:
    return "\n".join(
        json.dumps(
            {"timestamp": "2026-01-01T00:00:00.1Z", "level": "info", "event": line, "logger": "airflow.task"}
        )
        for line in text.split("\n")
    )


def _ansi(text: str) -> str:
    return "\n".join(f"\x1b[31m{line}\x1b[0m" for line in text.split("\n"))


def _lost_escape(text: str) -> str:
    return "\n".join(f"[31m{line}[0m" for line in text.split("\n"))


def _literal_escapes(text: str) -> str:
    return json.dumps(text)[1:-1]


def _wrapped(text: str) -> str:
    return "\n".join(
        textwrap.fill(line, 60, break_long_words=False, break_on_hyphens=False, drop_whitespace=False) or line
        for line in text.split("\n")
    )


NOISE: dict[str, Callable[[str], str]] = {
    "airflow2-prefix": _per_line("[2026-01-01, 00:00:00 UTC] {subprocess.py:93} INFO - "),
    "airflow3-prefix": _per_line("[2026-01-01T00:00:00.123+0000] {dbt.py:241} ERROR - "),
    "k8s-cri-prefix": _per_line("2026-01-01T00:00:00.123456789Z stdout F "),
    "kubectl-prefix": _per_line("[pod/dbt-run-7f9c/base] "),
    "dbt-debug-log": _per_line("00:00:00.123456 [error] [Thread-1 (worker)]: "),
    "pytest-E": _per_line("E       "),
    "dbt-json-lines": _dbt_json,
    "airflow3-json-lines": _airflow3_json,
    "ansi-colour": _ansi,
    "ansi-lost-escape": _lost_escape,
    "literal-escapes": _literal_escapes,
    "wrapped-at-60": _wrapped,
    "redacted": redact,
}


@pytest.mark.parametrize("noise", list(NOISE))
def test_every_corpus_message_keeps_its_class_under_noise(noise: str) -> None:
    changed: list[str] = []
    for entry in UNAMBIGUOUS:
        if noise == "wrapped-at-60" and entry["text"].lstrip().startswith("{"):
            continue  # a JSON log line is never re-wrapped: a wrapped one is no longer JSON
        expected = classify_entry(entry).failure_class
        got = classify_entry(entry, NOISE[noise](entry["text"])).failure_class
        if got is not expected:
            changed.append(f"{entry['id']}: {expected.value} -> {got.value}")
    assert not changed, f"{len(changed)} of {len(UNAMBIGUOUS)} changed class: {changed[:10]}"


def test_noise_layers_stack() -> None:
    text = "000904 (42000): SQL compilation error: error line 3 at position 4\ninvalid identifier 'CUSTOMER_EMAIL'"
    carried = NOISE["airflow2-prefix"](NOISE["k8s-cri-prefix"](NOISE["ansi-colour"](text)))
    triage = classify(carried)
    assert triage.failure_class is FailureClass.MISSING_COLUMN
    assert triage.identifiers[0] == "CUSTOMER_EMAIL"


def test_dbt_json_line_gives_the_node_facts() -> None:
    event: dict[str, Any] = {
        "info": {
            "code": "Q007",
            "level": "error",
            "msg": "1 of 1 FAIL 3 unique_orders_order_id ...... [FAIL 3]",
        },
        "data": {
            "status": "fail",
            "node_info": {
                "resource_type": "test",
                "node_status": "fail",
                "unique_id": "test.shop.unique_orders_order_id.5e4a1c",
            },
        },
    }
    text, hints = normalise(json.dumps(event))
    assert text.startswith("1 of 1 FAIL 3 unique_orders_order_id")
    assert (hints.resource_type, hints.status, hints.event_code) == ("test", "fail", "Q007")
    triage = classify(json.dumps(event))
    assert triage.failure_class is FailureClass.TEST_UNIQUE
    assert triage.signal == "dbt event Q007 status=fail"
    assert triage.identifiers[0] == "unique_orders_order_id"


def test_dbt_freshness_event_says_stale_and_a_runtime_error_does_not() -> None:
    def event(status: str) -> str:
        msg = f"1 of 1 {'ERROR STALE' if status == 'error' else 'ERROR'} freshness of raw.orders [{status}]"
        return json.dumps(
            {"info": {"code": "Q018", "level": "error", "msg": msg}, "data": {"status": status}}
        )

    assert classify(event("error")).failure_class is FailureClass.SOURCE_FRESHNESS
    assert classify(event("runtime error")).failure_class is FailureClass.UNKNOWN


def test_a_json_line_that_is_not_a_log_record_is_kept() -> None:
    text, _ = normalise('{"order_id": 1}\n{not json')
    assert text == '{"order_id": 1}\n{not json'


def test_flattened_joins_lines_and_indentation() -> None:
    assert flattened("invalid\n    identifier 'X'") == "invalid identifier 'X'"


def test_literal_escapes_are_only_undone_when_they_are_the_line_breaks() -> None:
    text, _ = normalise("line one\nC:\\new\\table is a path\nline three")
    assert "C:\\new\\table" in text


def test_colour_inside_a_json_log_message_goes_without_eating_a_letter() -> None:
    line = json.dumps(
        {
            "info": {
                "code": "Z022",
                "level": "error",
                "msg": "\x1b[31mFailure in test unique_x (m.yml)\x1b[0m",
            },
            "data": {},
        }
    )
    text, _ = normalise(line)
    assert text == "Failure in test unique_x (m.yml)"


def test_pytest_e_lines_empty_or_deeply_indented() -> None:
    text, _ = normalise("E\nE                    invalid identifier 'X'")
    assert text == "\ninvalid identifier 'X'"
