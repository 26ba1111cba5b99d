"""
One failure, one fingerprint: however it was carried and whenever it ran; and two failures, two fingerprints.

The texts are the triage corpus (``tests/data/triage/*.yaml``): real dbt, Snowflake, DuckDB, fakesnow, connector
and Airflow error texts. Each goes through every capture channel (log prefixes, JSON log lines, colours,
escapes, wrapping, CRLF) and through runs that differ in their volatile parts; then it is changed where it
matters (a column, a model, a code, a detail after a blank line, the end of a long header).
"""

from __future__ import annotations

import json
import re
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from airflow_selfheal.core.incident import (
    compute_fingerprint,
    normalize_error_signature,
    signature_key,
)
from airflow_selfheal.core.triage.noise import normalise
from airflow_selfheal.hooks.dbt import NodeStatus, ValidationResult
from tests.unit.core.triage.test_classifier import CORPUS

if TYPE_CHECKING:
    from collections.abc import Callable

PIPELINE = "shop_pipeline"


def _node(text: str) -> str:
    """The failed node as the callback would know it: a dbt JSON log line names it, else one model."""
    return normalise(text)[1].unique_id or "model.shop.stg_orders"


def fingerprint(text: str, node: str | None = None) -> str:
    return compute_fingerprint(PIPELINE, [node or _node(text)], normalize_error_signature(text))


def _is_json_log(text: str) -> bool:
    return any(line.strip().startswith("{") and line.strip().endswith("}") for line in text.split("\n"))


# ---------------------------------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------------------------------


def _per_line(prefix: str) -> Callable[[str], str]:
    return lambda text: "\n".join(prefix + line for line in text.split("\n"))


def _dbt_json(text: str) -> str:
    """`dbt --log-format json`: one structured event per line."""
    return "\n".join(
        json.dumps(
            {
                "info": {"code": "Z024", "level": "error", "msg": line, "ts": "2026-01-01T00:00:00.5Z"},
                "data": {},
            }
        )
        for line in text.split("\n")
    )


def _airflow3_json(text: str) -> str:
    """Airflow 3's structured task log."""
    return "\n".join(
        json.dumps(
            {"timestamp": "2026-01-01T00:00:00.1Z", "level": "error", "event": line, "logger": "airflow.task"}
        )
        for line in text.split("\n")
    )


def _wrapped(width: int, *, break_long_words: bool = True) -> Callable[[str], str]:
    """A terminal or a ticket wrapping each line (textwrap's defaults also break long words and hyphens)."""

    def wrap(text: str) -> str:
        return "\n".join(
            textwrap.fill(line, width, break_long_words=break_long_words, break_on_hyphens=break_long_words)
            or line
            for line in text.split("\n")
        )

    return wrap


#: The carrier applied to a whole text: a log prefix per line, or JSON log lines, or escapes.
CARRIERS: dict[str, Callable[[str], str]] = {
    "airflow2-prefix": _per_line("[2026-01-01, 00:00:00 UTC] {subprocess.py:93} INFO - "),
    "airflow3-prefix": _per_line("[2026-01-01T00:00:00.123+0000] {dbt.py:241} ERROR - "),
    "k8s-cri-prefix": _per_line("2026-01-01T00:00:00.123456789Z stdout F "),
    "kubectl-prefix": _per_line("[pod/dbt-run-7f9c/base] "),
    "dbt-debug-log": _per_line("00:00:00.123456 [error] [Thread-1 (worker)]: "),
    "pytest-E": _per_line("E       "),
    "dbt-json-lines": _dbt_json,
    "airflow3-json-lines": _airflow3_json,
    "literal-escapes": lambda text: json.dumps(text)[1:-1],
}
#: What happens to the text's own lines before it is carried.
FORMATTING: dict[str, Callable[[str], str]] = {
    "ansi-colour": lambda text: "\n".join(f"\x1b[1;31m{line}\x1b[0m" for line in text.split("\n")),
    "ansi-lost-escape": lambda text: "\n".join(f"[31m{line}[0m" for line in text.split("\n")),
    "cli-box": lambda text: "\n".join(f"│ {line} │" for line in text.split("\n")),
    "wrapped-at-60": _wrapped(60),
    "wrapped-at-80": _wrapped(80),
    "word-wrapped-at-60": _wrapped(60, break_long_words=False),
}
LINE_ENDS: dict[str, Callable[[str], str]] = {"crlf": lambda text: text.replace("\n", "\r\n")}
CHANNELS = {**CARRIERS, **FORMATTING, **LINE_ENDS}
#: A JSON log line is never wrapped (a wrapped one is no longer JSON), coloured (dbt colours only its text
#: format) nor carried in another JSON line.
_NOT_FOR_JSON_LOGS = {
    "ansi-colour",
    "ansi-lost-escape",
    "dbt-json-lines",
    "airflow3-json-lines",
    "wrapped-at-60",
    "wrapped-at-80",
    "word-wrapped-at-60",
}


def _applicable(entry: dict[str, Any], channel: str) -> bool:
    return not (channel in _NOT_FOR_JSON_LOGS and _is_json_log(entry["text"]))


class TestChannels:
    @pytest.mark.parametrize("channel", list(CHANNELS))
    def test_every_corpus_text_keeps_its_fingerprint(self, channel: str) -> None:
        entries = [entry for entry in CORPUS if _applicable(entry, channel)]
        changed = [
            entry["id"]
            for entry in entries
            if fingerprint(CHANNELS[channel](entry["text"]), _node(entry["text"]))
            != fingerprint(entry["text"])
        ]
        assert len(entries) >= 370
        assert not changed, f"{len(changed)} of {len(entries)} changed fingerprint: {changed[:10]}"

    @given(
        entry=st.sampled_from(CORPUS),
        formatting=st.lists(st.sampled_from(sorted(FORMATTING)), max_size=2, unique=True),
        carriers=st.lists(st.sampled_from(sorted(CARRIERS)), max_size=2, unique=True),
        crlf=st.booleans(),
    )
    def test_channels_stacked(
        self, entry: dict[str, Any], formatting: list[str], carriers: list[str], crlf: bool
    ) -> None:
        layers = [*formatting, *carriers, *(["crlf"] if crlf else [])]
        assume(all(_applicable(entry, layer) for layer in layers))
        # Once in JSON or escaped, a text is no longer lines for another carrier to prefix.
        assume(
            not any(
                layer in ("dbt-json-lines", "airflow3-json-lines", "literal-escapes")
                for layer in carriers[:-1]
            )
        )
        carried = entry["text"]
        for layer in layers:
            carried = CHANNELS[layer](carried)
        assert fingerprint(carried, _node(entry["text"])) == fingerprint(entry["text"]), layers


# ---------------------------------------------------------------------------------------------------------------
# Runs of one failure
# ---------------------------------------------------------------------------------------------------------------

_TIMES = st.times().map(lambda moment: moment.strftime("%H:%M:%S"))
_SECONDS = st.floats(min_value=0.01, max_value=5000, allow_nan=False).map(lambda value: f"{value:.2f}")


@st.composite
def dbt_console_log(draw: st.DrawFn, text: str) -> str:
    """``text`` as the last part of a `dbt build` console log, with this run's times, ids and thread order."""
    total = draw(st.integers(min_value=2, max_value=400))
    position = draw(st.integers(min_value=1, max_value=total))
    others = draw(st.permutations([f"model.shop.other_{index}" for index in range(4)]))

    def stamp(line: str) -> str:
        return f"{draw(_TIMES)}  {line}"

    lines = [
        stamp("Running with dbt=1.11.2"),
        stamp(f"{position} of {total} START sql view model shop.stg_orders ....... [RUN]"),
        stamp(
            f"{position} of {total} ERROR creating sql view model shop.stg_orders .. [ERROR in {draw(_SECONDS)}s]"
        ),
        stamp(""),
        stamp(f"Finished running {total} view models in 0 hours 0 minutes and {draw(_SECONDS)} seconds."),
        stamp(""),
        stamp("Completed with 1 error, 0 partial successes, and 0 warnings:"),
        stamp(""),
        *(stamp(line) for line in text.split("\n")),
        f"  sfqid: {draw(st.uuids())} at {draw(st.datetimes()).isoformat(sep=' ')} pid={draw(st.integers(1, 99999))}",
        f"  compiled code at /tmp/tmp{draw(st.text('abcdefghijklmnopqrstuvwxyz0123456789_', min_size=8, max_size=8))}"
        "/target/run/shop/models/stg_orders.sql",
        # Other threads' progress, in this run's order.
        *(
            stamp(
                f"{draw(st.integers(1, total))} of {total} OK created sql view model {name} .. [SUCCESS 1 in 0.1s]"
            )
            for name in others
        ),
        stamp(
            f"Done. PASS={draw(st.integers(0, 400))} WARN=0 ERROR=1 SKIP={draw(st.integers(0, 9))} TOTAL={total}"
        ),
    ]
    return "\n".join(lines)


class TestRunsOfOneFailure:
    @given(
        data=st.data(), entry=st.sampled_from([entry for entry in CORPUS if not _is_json_log(entry["text"])])
    )
    def test_times_ids_counts_and_thread_order_do_not_count(
        self, data: st.DataObject, entry: dict[str, Any]
    ) -> None:
        first = data.draw(dbt_console_log(entry["text"]))
        again = data.draw(dbt_console_log(entry["text"]))
        assert fingerprint(first, "model.shop.stg_orders") == fingerprint(again, "model.shop.stg_orders")

    @given(
        run_id=st.datetimes().map(lambda moment: f"scheduled__{moment.isoformat()}+00:00"),
        try_number=st.integers(1, 9),
        job=st.integers(1, 10**9),
        query_id=st.uuids(),
    )
    def test_airflow_s_own_volatile_lines_do_not_count(
        self, run_id: str, try_number: int, job: int, query_id: uuid.UUID
    ) -> None:
        text = (
            "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
            f"  000904 (42000): SQL compilation error: invalid identifier 'EMAIL' (query {query_id})\n"
            f"Marking task as FAILED. dag_id=shop, task_id=stg_orders, run_id={run_id}, try_number={try_number}\n"
            f"Failed to execute job {job} for task stg_orders"
        )
        assert fingerprint(text) == fingerprint(
            text.replace(run_id, "manual__2026-01-01T00:00:00+00:00")
            .replace(f"try_number={try_number}", "try_number=1")
            .replace(f"job {job} ", "job 1 ")
            .replace(str(query_id), "01b2c3d4-0000-1a2b-0000-0001a2b3c4d5")
        )


# ---------------------------------------------------------------------------------------------------------------
# Different failures
# ---------------------------------------------------------------------------------------------------------------

_IDENTIFIER = st.from_regex(r"[A-Z][A-Z_]{2,24}", fullmatch=True)
_CODE = re.compile(r"\b(\d{6}) \(\w{5}\)")


def _with_identifier(entry: dict[str, Any]) -> bool:
    identifiers = entry.get("expected_identifiers") or []
    return bool(identifiers) and identifiers[0].lower() in normalize_error_signature(entry["text"])


class TestDifferentFailures:
    @given(entry=st.sampled_from([entry for entry in CORPUS if _with_identifier(entry)]), other=_IDENTIFIER)
    def test_another_column_or_relation(self, entry: dict[str, Any], other: str) -> None:
        original = entry["expected_identifiers"][0]
        assume(other.lower() not in entry["text"].lower() and other.lower() != original.lower())
        changed = re.sub(re.escape(original), other, entry["text"], flags=re.IGNORECASE)
        assert fingerprint(changed, _node(entry["text"])) != fingerprint(entry["text"])

    @given(
        entry=st.sampled_from([entry for entry in CORPUS if _CODE.search(entry["text"])]),
        code=st.integers(0, 999_999),
    )
    def test_another_error_code(self, entry: dict[str, Any], code: int) -> None:
        found = _CODE.search(entry["text"])
        assert found is not None
        assume(f"{code:06d}" != found.group(1))
        # Everywhere: a JSON log line also carries its message in fields nobody reads.
        changed = entry["text"].replace(found.group(), f"{code:06d}" + found.group()[6:])
        assert fingerprint(changed, _node(entry["text"])) != fingerprint(entry["text"])

    @given(first=_IDENTIFIER, second=_IDENTIFIER)
    def test_another_model(self, first: str, second: str) -> None:
        assume(first != second)

        def error(model: str) -> str:
            return f"Database Error in model {model.lower()} (models/{model.lower()}.sql)\n  000904 (42000): boom"

        # The node the callback names is the same: only the text tells them apart.
        assert fingerprint(error(first), "model.shop.x") != fingerprint(error(second), "model.shop.x")

    @given(first=st.sampled_from(CORPUS), second=st.sampled_from(CORPUS))
    def test_the_same_header_with_another_detail_after_a_blank_line(
        self, first: dict[str, Any], second: dict[str, Any]
    ) -> None:
        assume(
            signature_key(normalize_error_signature(first["text"]))
            != signature_key(normalize_error_signature(second["text"]))
        )
        header = "Database Error in model stg_orders (models/staging/stg_orders.sql)\n\n"
        assert fingerprint(header + first["text"], "model.shop.stg_orders") != fingerprint(
            header + second["text"], "model.shop.stg_orders"
        )

    @given(
        name=st.text("abcdefghijklmnopqrstuvwxyz_", min_size=500, max_size=2000),
        ends=st.tuples(
            st.sampled_from("abcdefghijklmnopqrstuvwxyz"), st.sampled_from("abcdefghijklmnopqrstuvwxyz")
        ),
    )
    def test_headers_over_500_characters_that_differ_at_the_end(
        self, name: str, ends: tuple[str, str]
    ) -> None:
        assume(ends[0] != ends[1])
        first, second = (f"Compilation Error in model {name}{end} (models/x.sql)" for end in ends)
        assert len(first) > 500
        assert fingerprint(first, "model.shop.x") != fingerprint(second, "model.shop.x")

    def test_corpus_entries_of_different_classes_never_share_a_fingerprint(self) -> None:
        classes: dict[str, set[str]] = {}
        for entry in CORPUS:
            classes.setdefault(fingerprint(entry["text"]), set()).add(entry["expected_class"])
        shared = {key: found for key, found in classes.items() if len(found) > 1}
        assert len(classes) >= 350
        assert not shared, shared


# ---------------------------------------------------------------------------------------------------------------
# Examples
# ---------------------------------------------------------------------------------------------------------------

SF_ERROR = (
    "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
    "  000904 (42000): SQL compilation error: error line 3 at position 4\n"
    "  invalid identifier 'CUSTOMER_EMAIL'"
)


class TestExamples:
    def test_the_fingerprint_of_a_known_failure_is_pinned(self) -> None:
        # Changing it changes the dedup key of every recurring failure: say so in the changelog.
        assert fingerprint(SF_ERROR) == "b8a81c4573bcb2da7f03497590f80375d3d77d88e5845b811b29c629f1b899b2"

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param("AirflowException: boom", "ValueError: boom", id="exception-class"),
            pytest.param(
                "000904 (42000): SQL compilation error: error line 3 at position 4",
                "000904 (42000): SQL compilation error: error line 9 at position 4",
                id="sql-line",
            ),
            pytest.param(
                "Database Error in model a\n\n  x", "Database Error in model a\n\n  y", id="after-blank-line"
            ),
            pytest.param("invalid identifier '\"customerEmail\"'", "invalid identifier 'X'", id="identifier"),
        ],
    )
    def test_apart(self, first: str, second: str) -> None:
        assert fingerprint(first) != fingerprint(second)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param(
                "snowflake.connector.errors.ProgrammingError: 390114 (08001): Authentication token has expired.",
                "390114 (08001): Authentication token has expired.",
                id="exception-class-before-the-code",
            ),
            pytest.param(
                "Database Error in model a\n  3 of 9 OK created sql view model b ..... [SUCCESS 1 in 0.2s]\n  boom",
                "Database Error in model a\n  boom",
                id="another-thread-s-progress-line",
            ),
            pytest.param(
                "1 of 4 FAIL 3 unique_orders_order_id ........ [FAIL 3 in 0.12s]",
                "3 of 4 FAIL 17 unique_orders_order_id ........ [FAIL 17 in 1.5s]",
                id="test-row-count-and-position",
            ),
            pytest.param(
                "Database Error in model a\n  see https://x.snowflakecomputing.com/q?request_id=9bec6327-45ec-"
                "4d9c-968b-cfa2cbd0036c",
                "Database Error in model a\n  see https://x.snowflakecomputing.com/q?request_id=01b2c3d4-0000-\n"
                "1a2b-0000-0001a2b3c4d5",
                id="query-id-split-by-a-wrap",
            ),
            pytest.param(
                "Compilation Error in model stg-orders-daily",
                "Compilation Error in model stg-\norders-daily",
                id="hyphen-wrap",
            ),
        ],
    )
    def test_together(self, first: str, second: str) -> None:
        assert fingerprint(first) == fingerprint(second)

    def test_the_signature_is_readable(self) -> None:
        log = "\x1b[0m10:11:12  " + SF_ERROR.replace("\n", "\r\n10:11:12  ")
        assert normalize_error_signature(log) == (
            "database error in model stg_orders (models/staging/stg_orders.sql) 000904 (42000): sql compilation "
            "error: error line 3 at position 4 invalid identifier 'customer_email'"
        )

    def test_whitespace_does_not_count(self) -> None:
        assert signature_key("a b\n c\t") == "abc"
        assert compute_fingerprint(PIPELINE, [], "a b") == compute_fingerprint(PIPELINE, [], "ab")

    def test_the_read_is_bounded(self) -> None:
        middle = "progress line\n" * 100_000
        text = "Database Error in model a\n" + middle + "000904 (42000): the cause"
        signature = normalize_error_signature(text)
        assert signature.startswith("database error in model a")
        assert signature.endswith("the cause")
        assert len(signature) < 41_000


# ---------------------------------------------------------------------------------------------------------------
# The validation loop's signature
# ---------------------------------------------------------------------------------------------------------------

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"


def _validation(message: str, clone: str = CLONE) -> ValidationResult:
    failure = NodeStatus("model.shop.stg_orders", "model", "error", message, 0.2)
    return ValidationResult(
        success=False,
        select="stg_orders+",
        target_database=clone,
        attempt="attempt-1",
        nodes=(failure,),
        failures=(failure,),
        elapsed_seconds=3.0,
        logs_excerpt="",
        files_hash="abc",
    )


class TestValidationSignature:
    def test_two_attempts_failing_alike_are_stuck(self) -> None:
        first = _validation(
            f"000904 (42000): invalid identifier 'X' in {CLONE}.RAW.ORDERS, sfqid: {uuid.uuid4()}"
        )
        other_clone = "DEMO__SELFHEAL_INC_0001__20260101T110000Z"
        again = _validation(
            f"\x1b[31m000904 (42000): invalid identifier 'X'\x1b[0m in {other_clone.lower()}.raw.orders,\n"
            f"sfqid: {uuid.uuid4()}",
            clone=other_clone,
        )
        assert first.error_signature == again.error_signature

    def test_another_failure_is_progress(self) -> None:
        assert (
            _validation("invalid identifier 'X'").error_signature
            != _validation("invalid identifier 'Y'").error_signature
        )
