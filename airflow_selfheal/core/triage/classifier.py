"""The entry point of triage: :func:`classify` a failed node's error text into a :class:`Triage`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_selfheal.core.triage.codes import CodeVerdict, code_verdict, duckdb_type, sqlstate_verdict
from airflow_selfheal.core.triage.model import POLICIES, Action, FailureClass, Triage
from airflow_selfheal.core.triage.noise import flattened, normalise
from airflow_selfheal.core.triage.root_cause import _root_cause
from airflow_selfheal.core.triage.rules import RULES, _Rule
from airflow_selfheal.core.triage.text import (
    MAX_IDENTIFIERS,
    _clean,
    _error_code,
    _excerpt,
    _failed_node,
    _identifiers,
    _summary,
    _test_class,
    _window,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

_TEST_STATUSES = frozenset({"fail", "warn"})
_FRESHNESS_STATUSES = frozenset({"error", "warn"})
_TEST_RESULT_COUNT = re.compile(r"Got \d{1,18} results?, configured to", re.IGNORECASE)
_TEST_NODE_NAMED = re.compile(r"(?:Failure|Warning|Error) in test ", re.IGNORECASE)
# A wrapped message is short; a long log is not rejoined (its lines are whole).
_FLATTEN_MAX_CHARS = 8_000


def classify(
    error_text: str,
    *,
    resource_type: str | None = None,
    test_name: str | None = None,
    status: str | None = None,
    drift_events: Sequence[Mapping[str, Any]] = (),
    lineage: Sequence[str] = (),
) -> Triage:
    r"""
    Classify a dbt node failure and recommend an action.

    .. code-block:: python

        triage = classify(
            "Failure in test unique_stg_orders_order_id (models/staging/schema.yml)\n"
            "  Got 3 results, configured to fail if != 0",
            resource_type="test",
            status="fail",
        )
        assert triage.failure_class is FailureClass.TEST_UNIQUE

    :param error_text: the node's error message or log; only its first and last :data:`WINDOW_CHARS`
        characters are read.
    :param resource_type: the dbt resource type of the failed node: ``model``, ``test``, ``seed``,
        ``snapshot`` or ``source``.
    :param test_name: the generic test's name when known (``unique``, ``not_null``, ``accepted_values``,
        ``relationships``); None for a singular test or when unknown.
    :param status: the ``run_results.json`` status: ``error``, ``fail``, ``warn``, ``runtime error``...
    :param drift_events: drift event dicts (``DriftEvent.to_dict()``) to correlate with the error.
    :param lineage: the relations the failed node reads, directly or through its parents, as ``SCHEMA.TABLE``
        (see :func:`lineage_relations`); drift on them is preferred as the root cause, and a type change must
        be on one of them unless the error names its column.
    :return: the triage.
    """
    text, hints = normalise(_clean(_window(error_text if isinstance(error_text, str) else str(error_text))))
    type_key = (resource_type or hints.resource_type or "").strip().lower()
    if not type_key and hints.unique_id:
        type_key = hints.unique_id.split(".", 1)[0].lower()
    status_key = (status or hints.status or "").strip().lower()
    is_test = type_key == "test" or test_name is not None
    from_log = f"dbt event {hints.event_code}".rstrip() if status is None and hints.status else "run_results"

    decision = _decide(text, is_test=is_test, type_key=type_key, status_key=status_key, from_log=from_log)
    text = decision.text
    match = decision.match
    details: list[re.Match[str]] = []
    if match is not None and decision.rule is not None:
        region = text[match.start() : min(len(text), match.end() + 500)]
        details = [found for detail in decision.rule.details if (found := detail.search(region)) is not None]
        identifiers, columns = _identifiers(match, details)
        start: int | None = match.start()
        error_code = decision.code or _error_code(text, match.start(), match.end())
    else:
        identifiers, columns = [], []
        start = decision.start
        error_code = decision.code or _error_code(text, 0, 0)
    failure_class = decision.failure_class
    named = text
    if hints.unique_id and not _TEST_NODE_NAMED.search(text):
        # A structured log line named the node only in its node facts.
        kind = "test" if is_test else type_key or "model"
        named = f"Failure in {kind} {hints.unique_id}\n{text}"

    if failure_class is FailureClass.TEST_SINGULAR:
        failure_class, test_node = _test_class(test_name, named)
        if test_node:
            identifiers = [test_node, *[item for item in identifiers if item != test_node]]

    node = _failed_node(named)
    relations = [item for item in identifiers if item not in columns]
    root_cause = _root_cause(failure_class, columns, relations, drift_events, text, lineage)
    policy = POLICIES[failure_class]
    return Triage(
        failure_class=failure_class,
        action=decision.action or policy.action,
        summary=_summary(failure_class, identifiers, node, _excerpt(text, start), root_cause),
        identifiers=tuple(identifiers[:MAX_IDENTIFIERS]),
        error_code=error_code,
        matched_rule=decision.rule_id,
        root_cause=root_cause,
        signal=decision.signal,
        confidence=decision.confidence,
    )


class _Decision(NamedTuple):
    failure_class: FailureClass
    rule_id: str
    signal: str
    confidence: float
    text: str
    rule: _Rule | None = None
    match: re.Match[str] | None = None
    start: int | None = None
    code: str | None = None
    action: Action | None = None


def _first(
    text: str, tier: str, failure_class: FailureClass | None = None
) -> tuple[_Rule, re.Match[str]] | None:
    """The first rule of a tier (and of a class, when given) that matches the text."""
    lowered = text.lower()
    for rule in RULES:
        if rule.tier != tier or (failure_class is not None and rule.failure_class is not failure_class):
            continue
        found = rule.search(text, lowered)
        if found is not None:
            return rule, found
    return None


def _first_wrapped(text: str, tier: str) -> tuple[str, _Rule, re.Match[str]] | None:
    """
    The first rule of a tier that matches the text as it is or with its line breaks joined.

    Each rule is tried on both before the next rule (a message a terminal or a ticket wrapped), so that rule
    order decides and not where a line happened to break.
    """
    joined = flattened(text) if "\n" in text and len(text) <= _FLATTEN_MAX_CHARS else None
    lowered, joined_lowered = text.lower(), None if joined is None else joined.lower()
    for rule in RULES:
        if rule.tier != tier:
            continue
        found = rule.search(text, lowered)
        if found is not None:
            return text, rule, found
        if joined is not None and joined_lowered is not None:
            found = rule.search(joined, joined_lowered)
            if found is not None:
                return joined, rule, found
    return None


def _by_code(text: str, verdict: CodeVerdict, rule_prefix: str) -> _Decision:
    """A code's verdict, with the identifiers of the first rule of the same class that matches."""
    hit = _first(text, "specific", verdict.failure_class) or _first(text, "override", verdict.failure_class)
    rule, match = hit if hit is not None else (None, None)
    return _Decision(
        verdict.failure_class,
        rule.rule_id if rule is not None else rule_prefix,
        verdict.signal,
        verdict.confidence,
        text,
        rule,
        match,
        code=verdict.code,
        action=verdict.action,
    )


def _decide(text: str, *, is_test: bool, type_key: str, status_key: str, from_log: str) -> _Decision:
    """
    The class and the signal that decided it, strongest signal first.

    The order: dbt's own status for a data test, a hard limit named in words, a code, a specific wording, a SQLSTATE class, DuckDB's error type, dbt's
    wrapper wording, and last dbt's status for a source.
    """
    if is_test and status_key in _TEST_STATUSES:
        found = _TEST_RESULT_COUNT.search(text)
        return _Decision(
            FailureClass.TEST_SINGULAR,
            "dbt_test_status" if found is None else "dbt_test_failure",
            f"{from_log} status={status_key}",
            0.95,
            text,
            start=None if found is None else found.start(),
        )
    hit = _first_wrapped(text, "override")
    if hit is not None:
        joined, rule, match = hit
        return _Decision(
            rule.failure_class,
            rule.rule_id,
            f"pattern {rule.rule_id}",
            0.9,
            joined,
            rule,
            match,
            action=rule.action,
        )
    verdict = code_verdict(text)
    if verdict is not None:
        return _by_code(text, verdict, "code")
    hit = _first_wrapped(text, "specific")
    if hit is not None:
        joined, rule, match = hit
        return _Decision(
            rule.failure_class,
            rule.rule_id,
            f"pattern {rule.rule_id}",
            0.85,
            joined,
            rule,
            match,
            action=rule.action,
        )
    verdict = sqlstate_verdict(text) or duckdb_type(text)
    if verdict is not None:
        return _by_code(text, verdict, "sqlstate" if verdict.signal.startswith("sqlstate") else "duckdb_type")
    hit = _first_wrapped(text, "generic")
    if hit is not None:
        joined, rule, match = hit
        return _Decision(
            rule.failure_class, rule.rule_id, f"pattern {rule.rule_id}", 0.6, joined, rule, match
        )
    if type_key == "source" and status_key in _FRESHNESS_STATUSES:
        return _Decision(
            FailureClass.SOURCE_FRESHNESS, "dbt_source_status", f"{from_log} status={status_key}", 0.8, text
        )
    return _Decision(FailureClass.UNKNOWN, "none", "none", 0.0, text)
