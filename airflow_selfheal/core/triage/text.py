"""Error-text handling: bound and clean the text, pull the names and codes out of it, write the summary."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_selfheal.core.triage.model import FailureClass

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_selfheal.core.triage.model import RootCause

# dbt prints the failing node's error last and the connector prints its cause first; the middle of a long
# log is progress lines. Reading only the two ends bounds the work on any input.
WINDOW_CHARS = 20_000
SUMMARY_MAX_CHARS = 300
# Keep the identifiers list short enough for a page or a Slack message.
MAX_IDENTIFIERS = 8

_TEST_PREFIXES: tuple[tuple[str, FailureClass], ...] = (
    ("unique_", FailureClass.TEST_UNIQUE),
    ("not_null_", FailureClass.TEST_NOT_NULL),
    ("accepted_values_", FailureClass.TEST_ACCEPTED_VALUES),
    ("relationships_", FailureClass.TEST_RELATIONSHIPS),
)
_GENERIC_TESTS = {prefix[:-1]: failure_class for prefix, failure_class in _TEST_PREFIXES}

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b[@-Z\\-_]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Starts with a digit class, which the regex engine scans for quickly; the character before is checked after.
_ERROR_CODE = re.compile(r"(?P<code>\d{6})(?: \((?P<state>[0-9A-Z]{5})\))?:", re.IGNORECASE)
# The wrapper and test-node patterns run only on text holding one of these (lower-cased).
_NODE_NEEDLES = ("error in ", "failure in ", "warning in ", "' (")
# dbt prefixes every log line with the time; it is noise in a one-line summary.
_LOG_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?\s{1,8}")
_NODE_IN_WRAPPER = re.compile(
    r"(?:Database|Compilation|Runtime|Parsing) Error in (?P<rtype>model|test|seed|snapshot|source|analysis"
    r"|unit_test|operation|sql operation) (?P<node>[\w.-]{1,255})"
    r"|(?:Failure|Warning) in (?P<rtype2>model|test|seed|snapshot|source|unit_test) (?P<node2>[\w.-]{1,255})"
    r"|(?P<rtype3>Model|Test|Snapshot|Seed|Analysis|Unit test) '(?P<node3>[\w.-]{1,255})' \(",
    re.IGNORECASE,
)
_UNIQUE_ID = re.compile(
    r"^(?:model|seed|snapshot|analysis|test|unit_test|source)\.[\w-]{1,255}\.(?P<name>[\w-]{1,255})"
)
_TEST_NODE = re.compile(
    r"(?:Failure|Warning|Error)\s{1,8}in\s{1,8}test\s{1,8}(?P<test>[\w.-]{1,512})", re.IGNORECASE
)
# dbt's progress line, when no header names the test: "3 of 9 FAIL 4 not_null_orders_id ........ [FAIL 4 in 0.1s]".
_TEST_PROGRESS = re.compile(r"\b(?:FAIL|WARN)\s\d{1,18}\s{1,8}(?P<test2>[\w.-]{1,512})\s{1,8}\.{3}")


# ---------------------------------------------------------------------------------------------------------------
# Text handling
# ---------------------------------------------------------------------------------------------------------------


def _window(text: str) -> str:
    """Keep the first and last :data:`WINDOW_CHARS` characters; the middle of a long log is progress lines."""
    if len(text) <= 2 * WINDOW_CHARS:
        return text
    return text[:WINDOW_CHARS] + "\n...\n" + text[-WINDOW_CHARS:]


def _clean(text: str) -> str:
    """Drop terminal colour escapes and control characters (NUL included), keep newlines and tabs."""
    return _CONTROL_CHARS.sub("", _ANSI_ESCAPE.sub("", text.replace("\r\n", "\n")))


def _one_line(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _snowflake_name(raw: str) -> str:
    """Upper-case each unquoted part of a (possibly qualified) Snowflake name; quoted parts keep their case."""
    parts = []
    for part in raw.strip().split("."):
        part = part.strip()
        if len(part) >= 2 and part.startswith('"') and part.endswith('"'):
            parts.append(part[1:-1].replace('""', '"'))
        else:
            parts.append(part.replace('"', "").upper())
    return ".".join(parts)


def _identifiers(match: re.Match[str], details: Sequence[re.Match[str]]) -> tuple[list[str], list[str]]:
    """
    Collect identifiers from a match, most useful first: columns, then relations, then other names.

    :return: ``(identifiers, columns)``; ``columns`` are the unqualified column names used for correlation.
    """
    columns: list[str] = []
    relations: list[str] = []
    others: list[str] = []
    for found in (match, *details):
        for group, value in found.groupdict().items():
            if value is None or not value.strip():
                continue
            if group.startswith("column"):
                name = _snowflake_name(value)
                columns.append(name.rsplit(".", 1)[-1])
                if "." in name:
                    others.append(name)
            elif group.startswith("relation"):
                relations.append(_snowflake_name(value))
            elif group.startswith(("value", "name", "test")):
                others.append(value.strip())
    ordered: list[str] = []
    for item in (*columns, *relations, *others):
        if item and item not in ordered:
            ordered.append(item)
    return ordered[:MAX_IDENTIFIERS], columns


def _error_code(text: str, start: int, end: int) -> str | None:
    """
    The Snowflake or fakesnow code closest before the end of the matched error, else the first in the text.

    A code with its SQLSTATE (``000603 (XX000):``) is the message's own code and wins over a bare number such
    as the internal ``error 300005:`` inside the message.
    """
    with_state = bare = None
    for found in _ERROR_CODE.finditer(text, max(0, start - 600), min(len(text), end + 20)):
        if found.start() > end:
            break
        if not _code_boundary(text, found.start()):
            continue
        if found.group("state"):
            with_state = found.group("code")
        else:
            bare = found.group("code")
    if with_state or bare:
        return with_state or bare
    first = next((found for found in _ERROR_CODE.finditer(text) if _code_boundary(text, found.start())), None)
    return None if first is None else first.group("code")


def search_near(
    pattern: re.Pattern[str], text: str, lowered: str, needles: Iterable[str], margin: int
) -> re.Match[str] | None:
    """
    ``pattern.search(text)`` started ``margin`` characters before the first needle, or None without one.

    Every match of the pattern holds one of the needles (lower-case literals) and starts at most ``margin``
    characters before it, so the result is the same as a search of the whole text; on a long log whose
    error is at the end it skips the regex engine's walk through the progress lines.
    """
    first = min((index for needle in needles if (index := lowered.find(needle)) != -1), default=-1)
    if first == -1:
        return None
    return pattern.search(text, max(0, first - margin))


def _code_boundary(text: str, start: int) -> bool:
    """Whether a code starting at ``start`` is a code, not the tail of a longer number or a name."""
    return start == 0 or not (text[start - 1].isalnum() or text[start - 1] in "_.")


def _failed_node(text: str) -> str | None:
    """The failed node's short name from dbt's wrapper line, e.g. ``stg_orders``."""
    found = search_near(_NODE_IN_WRAPPER, text, text.lower(), _NODE_NEEDLES, 300)
    if found is None:
        return None
    node = found.group("node") or found.group("node2") or found.group("node3") or ""
    short = _UNIQUE_ID.match(node)
    return short.group("name") if short else node or None


def _test_class(test_name: str | None, text: str) -> tuple[FailureClass, str | None]:
    """
    Which kind of data test failed, from the generic test name or else the test node's name prefix.

    :return: the class and the test node's name when the text names it.
    """
    node = None
    lowered = text.lower()
    found = search_near(_TEST_NODE, text, lowered, ("test",), 40) or search_near(
        _TEST_PROGRESS, text, lowered, ("fail", "warn"), 10
    )
    if found is not None:
        groups = found.groupdict()
        node = groups.get("test") or groups.get("test2") or ""
        short = _UNIQUE_ID.match(node)
        node = short.group("name") if short else node
    if test_name:
        generic = test_name.strip().lower().rsplit(".", 1)[-1]
        return _GENERIC_TESTS.get(generic, FailureClass.TEST_SINGULAR), node
    if node:
        bare = node.lower().removeprefix("source_")
        for prefix, failure_class in _TEST_PREFIXES:
            if bare.startswith(prefix):
                return failure_class, node
    return FailureClass.TEST_SINGULAR, node


# ---------------------------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------------------------

_LABELS = {
    FailureClass.COMPILE_ERROR: "Compile error",
    FailureClass.DEPENDENCY_ERROR: "Dependency error",
    FailureClass.TRANSIENT: "Transient error",
    FailureClass.PERMISSION: "Permission denied",
    FailureClass.RESOURCE: "Resource exhausted",
}


def _summary(
    failure_class: FailureClass,
    identifiers: Sequence[str],
    node: str | None,
    excerpt: str,
    root_cause: RootCause | None,
) -> str:
    subject = identifiers[0] if identifiers else None
    by = f" referenced by {node}" if node else ""
    in_node = f" in {node}" if node else ""
    if failure_class is FailureClass.MISSING_COLUMN and subject:
        line = f"Column {subject}{by} no longer exists."
    elif failure_class is FailureClass.MISSING_RELATION and subject:
        line = f"Relation {subject}{by} does not exist or is not authorized."
    elif failure_class is FailureClass.TYPE_MISMATCH:
        line = f"Type mismatch{in_node}: {excerpt}"
    elif failure_class is FailureClass.DEPENDENCY_ERROR and subject:
        line = f"Missing dependency {subject!r}{in_node}: {excerpt}"
    elif failure_class.value.startswith("test_"):
        test = subject or node
        line = f"Data test {test} failed: {excerpt}" if test else f"A data test failed: {excerpt}"
    elif failure_class is FailureClass.SOURCE_FRESHNESS:
        source = subject or node
        line = f"Source {source} is stale: {excerpt}" if source else f"A source is stale: {excerpt}"
    elif failure_class is FailureClass.UNKNOWN:
        line = (
            f"Unrecognised failure{in_node}: {excerpt}"
            if excerpt
            else "Unrecognised failure with no error text."
        )
    else:
        line = f"{_LABELS.get(failure_class, 'Failure')}{in_node}: {excerpt}"
    if root_cause is not None:
        line = f"{line.rstrip('.')} ({root_cause.message.rstrip('.')})."
    return _one_line(line)


def _excerpt(text: str, start: int | None) -> str:
    """The line holding the match, or the first non-empty line when nothing matched."""
    if start is None:
        line = next((line for line in text.splitlines() if line.strip()), "")
    else:
        line_start = text.rfind("\n", 0, start) + 1
        line_end = text.find("\n", start)
        line = text[line_start : line_end if line_end != -1 else len(text)]
    return _one_line(_LOG_TIMESTAMP.sub("", line.strip()), 200)
