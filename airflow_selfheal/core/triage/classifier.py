"""The entry point of triage: :func:`classify` a failed node's error text into a :class:`Triage`."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.triage.model import POLICIES, FailureClass, Triage
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
    text = _clean(_window(error_text if isinstance(error_text, str) else str(error_text)))
    status_key = (status or "").strip().lower()
    type_key = (resource_type or "").strip().lower()
    is_test = type_key == "test" or test_name is not None

    matched: _Rule | None = None
    match: re.Match[str] | None = None
    # A test whose status is fail/warn ran and returned rows: whatever else the log says, it is a data test.
    if not (is_test and status_key in _TEST_STATUSES):
        for rule in RULES:
            match = rule.pattern.search(text)
            if match is not None:
                matched = rule
                break

    details: list[re.Match[str]] = []
    if matched is not None and match is not None:
        region = text[match.start() : min(len(text), match.end() + 500)]
        details = [found for detail in matched.details if (found := detail.search(region)) is not None]
        identifiers, columns = _identifiers(match, details)
        failure_class = matched.failure_class
        rule_id = matched.rule_id
        start: int | None = match.start()
        error_code = _error_code(text, match.start(), match.end())
    else:
        identifiers, columns = [], []
        failure_class = FailureClass.UNKNOWN
        rule_id = "none"
        start = None
        error_code = _error_code(text, 0, 0)
        if is_test and status_key in _TEST_STATUSES:
            found = _TEST_RESULT_COUNT.search(text)
            failure_class = FailureClass.TEST_SINGULAR
            rule_id = "dbt_test_status" if found is None else "dbt_test_failure"
            start = None if found is None else found.start()
        elif type_key == "source" and status_key in _FRESHNESS_STATUSES:
            failure_class, rule_id = FailureClass.SOURCE_FRESHNESS, "dbt_source_status"

    if failure_class is FailureClass.TEST_SINGULAR:
        failure_class, test_node = _test_class(test_name, text)
        if test_node:
            identifiers = [test_node, *[item for item in identifiers if item != test_node]]

    node = _failed_node(text)
    relations = [item for item in identifiers if item not in columns]
    root_cause = _root_cause(failure_class, columns, relations, drift_events, text, lineage)
    policy = POLICIES[failure_class]
    return Triage(
        failure_class=failure_class,
        action=policy.action,
        summary=_summary(failure_class, identifiers, node, _excerpt(text, start), root_cause),
        identifiers=tuple(identifiers[:MAX_IDENTIFIERS]),
        error_code=error_code,
        matched_rule=rule_id,
        root_cause=root_cause,
    )
