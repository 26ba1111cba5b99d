"""
Failure triage: turn the text of a failed dbt node into a stable failure class and a recommended action.

Pure and bounded. The classifier reads only the first and last :data:`WINDOW_CHARS` characters of the error
text (dbt prints the error at the end of a log, the connector at the start), strips terminal escapes and
control characters, and tries an ordered list of named rules, most specific first. Every pattern uses bounded
repetition without nested quantifiers, so a hostile multi-megabyte log costs milliseconds. No Airflow import
and no I/O, so callers anywhere (callbacks, operators, the page builder) can use :func:`classify`.

Both wordings of the same failure are understood: real Snowflake (``000904 (42000): SQL compilation error:
... invalid identifier 'X'``) and the embedded stand-in, whose errors are DuckDB's wording behind a fakesnow
code (``002043 (02000): Binder Error: Referenced column "X" not found``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# dbt prints the failing node's error last and the connector prints its cause first; the middle of a long
# log is progress lines. Reading only the two ends bounds the work on any input.
WINDOW_CHARS = 20_000
SUMMARY_MAX_CHARS = 300
# Keep the identifiers list short enough for a page or a Slack message.
MAX_IDENTIFIERS = 8


class FailureClass(str, enum.Enum):
    """Stable failure codes; the values are part of the incident record and must never change."""

    COMPILE_ERROR = "compile_error"
    DEPENDENCY_ERROR = "dependency_error"
    MISSING_COLUMN = "missing_column"
    MISSING_RELATION = "missing_relation"
    TYPE_MISMATCH = "type_mismatch"
    TEST_UNIQUE = "test_unique"
    TEST_NOT_NULL = "test_not_null"
    TEST_ACCEPTED_VALUES = "test_accepted_values"
    TEST_RELATIONSHIPS = "test_relationships"
    TEST_SINGULAR = "test_singular"
    SOURCE_FRESHNESS = "source_freshness"
    TRANSIENT = "transient"
    PERMISSION = "permission"
    RESOURCE = "resource"
    UNKNOWN = "unknown"


class Action(str, enum.Enum):
    """What the repair DAG does next for a class of failure."""

    RETRY = "retry"
    REPAIR = "repair"
    ESCALATE = "escalate"


class Policy(NamedTuple):
    """The recommended action for a failure class and a one-line description of it for humans."""

    action: Action
    description: str


POLICIES: dict[FailureClass, Policy] = {
    FailureClass.COMPILE_ERROR: Policy(
        Action.REPAIR,
        "The model's Jinja, SQL or YAML does not compile or parse; the fix is in the project code.",
    ),
    FailureClass.DEPENDENCY_ERROR: Policy(
        Action.REPAIR, "A ref(), source() or package the node needs is missing from the dbt graph."
    ),
    FailureClass.MISSING_COLUMN: Policy(
        Action.REPAIR, "The SQL references a column that no longer exists upstream (renamed or dropped)."
    ),
    FailureClass.MISSING_RELATION: Policy(
        Action.REPAIR, "The SQL references a table or view that does not exist or is not visible to the role."
    ),
    FailureClass.TYPE_MISMATCH: Policy(
        Action.REPAIR, "A value or column has a type the SQL cannot use; often an upstream type change."
    ),
    FailureClass.TEST_UNIQUE: Policy(Action.REPAIR, "A unique test found duplicate keys."),
    FailureClass.TEST_NOT_NULL: Policy(Action.REPAIR, "A not_null test found null values."),
    FailureClass.TEST_ACCEPTED_VALUES: Policy(
        Action.REPAIR, "An accepted_values test found a value outside the declared list."
    ),
    FailureClass.TEST_RELATIONSHIPS: Policy(
        Action.REPAIR, "A relationships test found keys with no parent row (orphans)."
    ),
    FailureClass.TEST_SINGULAR: Policy(
        Action.ESCALATE, "A custom data test failed; its intent is business logic that needs a person."
    ),
    FailureClass.SOURCE_FRESHNESS: Policy(
        Action.ESCALATE, "A source is stale; the data is late upstream, which no model change can fix."
    ),
    FailureClass.TRANSIENT: Policy(
        Action.RETRY, "A network, timeout, lock or warehouse-availability error; retry without code changes."
    ),
    FailureClass.PERMISSION: Policy(
        Action.ESCALATE, "The role lacks a privilege or the login failed; an administrator must grant access."
    ),
    FailureClass.RESOURCE: Policy(
        Action.RETRY,
        "Out of memory, disk or killed by the system; retry once, and escalate if it happens again.",
    ),
    FailureClass.UNKNOWN: Policy(
        Action.ESCALATE, "The error matched no known pattern; a person must read the logs."
    ),
}

ROOT_CAUSE_KINDS = (
    "upstream_rename",
    "upstream_column_removed",
    "upstream_type_change",
    "upstream_table_removed",
)


@dataclass(frozen=True)
class RootCause:
    """
    The upstream schema change that explains a failure, found by correlating the error with drift events.

    .. code-block:: python

        cause = RootCause(
            kind="upstream_column_removed",
            message="Upstream column removed: RAW.ORDERS.CUSTOMER_EMAIL.",
            evidence={"kind": "column_removed", "table": "RAW.ORDERS", "column": "CUSTOMER_EMAIL"},
        )

    :param kind: one of :data:`ROOT_CAUSE_KINDS`.
    :param message: one human sentence naming the change.
    :param evidence: the drift event (as a dict) that explains the failure.
    """

    kind: str
    message: str
    evidence: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict.

        :return: ``kind``, ``message`` and a plain-dict copy of ``evidence``.
        """
        return {"kind": self.kind, "message": self.message, "evidence": dict(self.evidence)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RootCause:
        """
        Rebuild a root cause from :meth:`to_dict` output.

        :param data: the dict.
        :return: the root cause.
        """
        return cls(
            kind=str(data["kind"]), message=str(data["message"]), evidence=dict(data.get("evidence") or {})
        )


@dataclass(frozen=True)
class Triage:
    r"""
    The verdict on one failure: its class, what to do, and the evidence for both.

    .. code-block:: python

        triage = classify("000904 (42000): SQL compilation error: error line 3 at position 4\n"
                          "invalid identifier 'CUSTOMER_EMAIL'")
        assert triage.failure_class is FailureClass.MISSING_COLUMN
        assert triage.action is Action.REPAIR
        assert triage.identifiers[0] == "CUSTOMER_EMAIL"

    :param failure_class: the class.
    :param action: the recommended action, from :data:`POLICIES`.
    :param summary: one human line, e.g. ``Column CUSTOMER_EMAIL referenced by stg_orders no longer exists.``
    :param identifiers: the column, relation, value or node names in the error, most useful first; Snowflake
        identifiers are upper-cased unless they were quoted.
    :param error_code: the Snowflake or fakesnow code, e.g. ``000904``, when the text has one.
    :param matched_rule: the id of the rule that decided the class, for explainability.
    :param root_cause: the upstream change that explains the failure, when drift correlation found one.
    """

    failure_class: FailureClass
    action: Action
    summary: str
    identifiers: tuple[str, ...] = ()
    error_code: str | None = None
    matched_rule: str = "none"
    root_cause: RootCause | None = None

    @property
    def description(self) -> str:
        """The class's one-line description and the reason for the action, from :data:`POLICIES`."""
        return POLICIES[self.failure_class].description

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict; enums become their string values.

        :return: every field plus the derived ``description``.
        """
        return {
            "failure_class": self.failure_class.value,
            "action": self.action.value,
            "summary": self.summary,
            "identifiers": list(self.identifiers),
            "error_code": self.error_code,
            "matched_rule": self.matched_rule,
            "root_cause": None if self.root_cause is None else self.root_cause.to_dict(),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Triage:
        """
        Rebuild a triage from :meth:`to_dict` output; ``description`` is derived, so it is not read.

        :param data: the dict.
        :return: the triage.
        """
        root_cause = data.get("root_cause")
        error_code = data.get("error_code")
        return cls(
            failure_class=FailureClass(data["failure_class"]),
            action=Action(data["action"]),
            summary=str(data["summary"]),
            identifiers=tuple(str(item) for item in data.get("identifiers") or ()),
            error_code=None if error_code is None else str(error_code),
            matched_rule=str(data.get("matched_rule", "none")),
            root_cause=None if root_cause is None else RootCause.from_dict(root_cause),
        )


# ---------------------------------------------------------------------------------------------------------------
# Rules. Named groups carry identifiers; the group name's prefix says what kind of name it is:
#   column*, relation*  Snowflake identifiers, upper-cased unless double-quoted in the error;
#   value*, name*, test*  kept as written.
# Each pattern starts with literal text and repeats only bounded character classes.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    rule_id: str
    failure_class: FailureClass
    pattern: re.Pattern[str]
    # Patterns searched inside the matched text and the lines just after it, for names the main pattern
    # cannot reach without unbounded lookahead (e.g. the source column of a DuckDB conversion error).
    details: tuple[re.Pattern[str], ...] = ()


def _rule(rule_id: str, failure_class: FailureClass, pattern: str, *details: str) -> _Rule:
    return _Rule(
        rule_id,
        failure_class,
        re.compile(pattern, re.IGNORECASE),
        tuple(re.compile(detail, re.IGNORECASE) for detail in details),
    )


_Q = r"'(?P<{}>[^'\n]{{1,255}})'"  # a single-quoted name
_DQ = r'"(?P<{}>[^"\n]{{1,255}})"'  # a double-quoted name


def _sq(group: str) -> str:
    return _Q.format(group)


def _dq(group: str) -> str:
    return _DQ.format(group)


_F = FailureClass
RULES: tuple[_Rule, ...] = (
    # --- Transient, keyed by Snowflake's own codes and wording (more specific than any SQL rule below).
    _rule("sf_token_expired", _F.TRANSIENT, r"\b390114\b|Authentication token has expired"),
    _rule(
        "sf_statement_timeout",
        _F.TRANSIENT,
        r"\b000630 \(57014\)|Statement reached its statement or warehouse timeout",
    ),
    _rule(
        "sf_lock_wait",
        _F.TRANSIENT,
        r"\b000625 \(57014\)|number of waiters for this lock exceeds|has locked table .{1,300}? lock has not yet been released",
    ),
    _rule(
        "sf_warehouse_unavailable",
        _F.TRANSIENT,
        r"\b000606 \(57P03\)|No active warehouse selected in the current session"
        r"|Warehouse '[^'\n]{1,255}' (?:is suspended|cannot be resumed|is missing)",
    ),
    # --- Permission.
    _rule(
        "sf_insufficient_privileges",
        _F.PERMISSION,
        r"Insufficient privileges to operate on (?P<kind>[a-z ]{1,40}?) " + _sq("relation"),
    ),
    _rule(
        "sf_access_control",
        _F.PERMISSION,
        r"\b003001 \(42501\)|SQL access control error|Insufficient privileges",
    ),
    _rule(
        "sf_login_failed",
        _F.PERMISSION,
        r"\b390100\b|Incorrect username or password was specified|\b390189\b|specified in the connect string does not exist or not authorized",
    ),
    # --- Resource exhaustion reported by the warehouse (its wording can include "SQL compilation error").
    _rule(
        "sf_out_of_memory",
        _F.RESOURCE,
        r"Processing aborted due to error 30000[45]|Compilation memory exhausted",
    ),
    _rule("duckdb_out_of_memory", _F.RESOURCE, r"Out of Memory Error: "),
    # --- Missing column.
    _rule("sf_invalid_identifier", _F.MISSING_COLUMN, r"invalid identifier " + _sq("column")),
    _rule(
        "duckdb_column_not_found",
        _F.MISSING_COLUMN,
        r"Referenced column " + _dq("column") + r" not found",
    ),
    _rule(
        "duckdb_table_has_no_column",
        _F.MISSING_COLUMN,
        r"Table " + _dq("relation") + r" does not have a column named " + _dq("column"),
    ),
    # --- Missing relation.
    _rule(
        "sf_object_does_not_exist",
        _F.MISSING_RELATION,
        r"(?:Object|Table|View|Materialized view|Schema|Database) "
        + _sq("relation")
        + r" does not exist(?: or not authorized)?",
    ),
    _rule(
        "duckdb_table_does_not_exist",
        _F.MISSING_RELATION,
        r"(?:Table|View|Schema) with name (?:"
        + _dq("relation_quoted")
        + r"|(?P<relation>[^\s\"!]{1,255})) does not exist",
    ),
    # --- Type mismatch.
    _rule("sf_numeric_value", _F.TYPE_MISMATCH, r"Numeric value " + _sq("value") + r" is not recognized"),
    _rule(
        "sf_datetime_value",
        _F.TYPE_MISMATCH,
        r"(?:Date|Time|Timestamp) " + _sq("value") + r" is not recognized",
    ),
    _rule("sf_boolean_value", _F.TYPE_MISMATCH, r"Boolean value " + _sq("value") + r" is not recognized"),
    _rule(
        "sf_variant_cast",
        _F.TYPE_MISMATCH,
        r"Failed to cast variant value (?:"
        + _dq("value")
        + r"|(?P<value_bare>[^\s\"]{1,255})) to (?P<type>\w{1,64})",
    ),
    _rule(
        "sf_expression_type",
        _F.TYPE_MISMATCH,
        r"Expression type does not match column data type, expecting (?P<type_expected>[^\n]{1,80}?) but got "
        r"(?P<type_got>[^\n]{1,80}?) for column (?P<column>[\w$\"]{1,255})",
    ),
    _rule(
        "sf_invalid_argument_types",
        _F.TYPE_MISMATCH,
        r"Invalid argument types for function " + _sq("name"),
    ),
    _rule(
        "duckdb_conversion",
        _F.TYPE_MISMATCH,
        r"Conversion Error: [^\n]{0,500}",
        r"when casting from source column (?P<column>[\w$]{1,255})",
        r"convert string [\"'](?P<value>[^\"'\n]{0,255})[\"']",
        r"field format: \"(?P<value>[^\"\n]{0,255})\"",
    ),
    _rule(
        "duckdb_no_function_matches",
        _F.TYPE_MISMATCH,
        r"No function matches the given name and argument types " + _sq("name"),
    ),
    _rule(
        "duckdb_cannot_compare",
        _F.TYPE_MISMATCH,
        r"Cannot compare values of type (?P<type_left>\w{1,64}) and type (?P<type_right>\w{1,64})",
    ),
    _rule(
        "duckdb_cannot_mix",
        _F.TYPE_MISMATCH,
        r"Cannot mix values of type (?P<type_left>\w{1,64}) and (?:type )?(?P<type_right>\w{1,64})",
    ),
    # DuckDB says this under several prefixes (Conversion Error, Invalid Input Error) depending on the operator.
    _rule(
        "duckdb_could_not_convert",
        _F.TYPE_MISMATCH,
        r"Could not convert string [\"'](?P<value>[^\"'\n]{0,255})[\"'] to (?P<type>\w{1,64})",
        r"when casting from source column (?P<column>[\w$]{1,255})",
    ),
    _rule(
        "sf_function_argument_type",
        _F.TYPE_MISMATCH,
        r"Function (?P<name>[\w$.]{1,255}) does not support (?P<type>[\w(), ]{1,80}?) argument type",
    ),
    # --- Dependency: the dbt graph or the installed packages lack something.
    _rule(
        "dbt_missing_node",
        _F.DEPENDENCY_ERROR,
        r"depends on an? [a-z ]{1,30}?named "
        + _sq("name")
        + r"[^\n]{0,200}?which (?:was not found|is disabled)",
    ),
    _rule(
        "dbt_required_package",
        _F.DEPENDENCY_ERROR,
        r"required package " + _dq("name") + r" was not found",
    ),
    _rule(
        "dbt_packages_not_installed",
        _F.DEPENDENCY_ERROR,
        r"package\(s\) specified in packages\.yml, but only \d{1,9} package\(s\) installed",
    ),
    _rule(
        "dbt_package_not_in_index",
        _F.DEPENDENCY_ERROR,
        r"Package (?P<name>[\w./@-]{1,255}) was not found in the package index",
    ),
    _rule(
        "dbt_undefined_package",
        _F.DEPENDENCY_ERROR,
        # A well-known package namespace that is undefined means `dbt deps` was not run or the package was dropped.
        r"'(?P<name>dbt_[a-z0-9_]{1,64}|codegen|audit_helper|elementary|metrics|snowplow_[a-z0-9_]{1,64})' is undefined",
    ),
    # --- Compile: SQL syntax, Jinja, YAML, project structure.
    _rule(
        "sf_syntax_error",
        _F.COMPILE_ERROR,
        r"syntax error line \d{1,9} at position \d{1,9} unexpected " + _sq("value"),
    ),
    _rule("fakesnow_parse_error", _F.COMPILE_ERROR, r"\b001003 \(42000\)|\b001003\b.{0,40}syntax error"),
    _rule(
        "duckdb_parser_error",
        _F.COMPILE_ERROR,
        r"Parser Error: (?:syntax error at or near " + _dq("value") + ")?",
    ),
    _rule(
        "sf_unknown_function",
        _F.COMPILE_ERROR,
        r"Unknown (?:user-defined )?function (?P<name>[\w$.\"]{1,255})",
    ),
    _rule(
        "duckdb_unknown_function",
        _F.COMPILE_ERROR,
        r"(?:Scalar|Aggregate|Table) Function with name (?P<name>[\w$.]{1,255}) does not exist",
    ),
    _rule("dbt_undefined_macro", _F.COMPILE_ERROR, r"'(?P<name>[\w.]{1,255})' is undefined"),
    _rule(
        "dbt_duplicate_resource",
        _F.COMPILE_ERROR,
        r"dbt found two [a-z. ]{1,60}?(?:with the name|named|for the same [a-z ]{1,40}?named) " + _dq("name"),
    ),
    _rule("dbt_parsing_error", _F.COMPILE_ERROR, r"\bParsing Error\b"),
    _rule("dbt_compilation_error", _F.COMPILE_ERROR, r"\bCompilation Error\b"),
    _rule("sf_sql_compilation_error", _F.COMPILE_ERROR, r"SQL compilation error"),
    # --- Data tests. Reached only when no database or compile error matched: a test that errors is an error.
    _rule(
        "dbt_test_failure",
        _F.TEST_SINGULAR,
        r"Got (?P<count>\d{1,18}) results?, configured to (?:fail|warn) if",
    ),
    # --- Source freshness.
    # ``ERROR freshness of`` (no STALE) is a runtime error of the freshness query, not stale data.
    _rule(
        "dbt_source_stale",
        _F.SOURCE_FRESHNESS,
        r"(?:ERROR STALE|WARN) freshness of (?P<name>[\w.-]{1,255})",
    ),
    _rule(
        "dbt_source_failure",
        _F.SOURCE_FRESHNESS,
        r"Failure in source (?P<name>[\w.-]{1,255})[^\n]{0,300}\n[\d:. ]{0,40}Status: (?:error|warn)",
    ),
    # --- Resource exhaustion.
    _rule(
        "out_of_memory",
        _F.RESOURCE,
        r"\bout of memory\b|\bOutOfMemory|\bMemoryError\b|Cannot allocate memory|\bOOMKilled\b|\boom-kill",
    ),
    _rule(
        "disk_full",
        _F.RESOURCE,
        r"No space left on device|disk quota exceeded|spill(?:ed|ing)? to (?:local|remote) storage",
    ),
    _rule(
        "killed",
        _F.RESOURCE,
        r"\bSIGKILL\b|\bsignal 9\b|return code -9\b|exit (?:code|status) (?:137|-9)\b|\bKilled\b",
    ),
    # --- Transient network and service errors (generic wording, so after everything specific).
    _rule(
        "connector_unreachable",
        _F.TRANSIENT,
        r"\b25000[13]\b|\b2510(?:11|12)\b|Could not connect to Snowflake backend|Failed to execute request",
    ),
    _rule(
        "http_unavailable",
        _F.TRANSIENT,
        r"\b(?:502|503|504) (?:Bad Gateway|Service Unavailable|Gateway Time-?out)|\bHTTP (?:Error )?(?:502|503|504)\b"
        r"|Service is unavailable|\b(?:503|504) Server Error",
    ),
    _rule(
        "network_timeout",
        _F.TRANSIENT,
        r"Read timed out|Connect(?:ion)? timed out|ConnectTimeout|ReadTimeout|\btimed out\b",
    ),
    _rule(
        "network_connection",
        _F.TRANSIENT,
        r"Connection (?:aborted|reset|refused)|RemoteDisconnected|Remote end closed connection|Broken pipe"
        r"|Max retries exceeded|Temporary failure in name resolution|Name or service not known|EOF occurred in violation"
        r"|Network is unreachable|No route to host|getaddrinfo failed|nodename nor servname provided",
    ),
)

_TEST_PREFIXES: tuple[tuple[str, FailureClass], ...] = (
    ("unique_", FailureClass.TEST_UNIQUE),
    ("not_null_", FailureClass.TEST_NOT_NULL),
    ("accepted_values_", FailureClass.TEST_ACCEPTED_VALUES),
    ("relationships_", FailureClass.TEST_RELATIONSHIPS),
)
_GENERIC_TESTS = {prefix[:-1]: failure_class for prefix, failure_class in _TEST_PREFIXES}
_TEST_STATUSES = frozenset({"fail", "warn"})
_FRESHNESS_STATUSES = frozenset({"error", "warn"})

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b[@-Z\\-_]")
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ERROR_CODE = re.compile(r"(?<![\w.])(?P<code>\d{6})(?: \((?P<state>[0-9A-Z]{5})\))?:", re.IGNORECASE)
# dbt prefixes every log line with the time; it is noise in a one-line summary.
_LOG_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?\s{1,8}")
_LABELS = {
    FailureClass.COMPILE_ERROR: "Compile error",
    FailureClass.DEPENDENCY_ERROR: "Dependency error",
    FailureClass.TRANSIENT: "Transient error",
    FailureClass.PERMISSION: "Permission denied",
    FailureClass.RESOURCE: "Resource exhausted",
}
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
    r"(?:Failure|Warning|Error) in test (?P<test>[\w.-]{1,512})|\b(?:FAIL|WARN) \d{1,18} (?P<test2>[\w.-]{1,512})",
    re.IGNORECASE,
)
_TEST_RESULT_COUNT = re.compile(r"Got \d{1,18} results?, configured to", re.IGNORECASE)


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
        if found.group("state"):
            with_state = found.group("code")
        else:
            bare = found.group("code")
    if with_state or bare:
        return with_state or bare
    first = _ERROR_CODE.search(text)
    return None if first is None else first.group("code")


def _failed_node(text: str) -> str | None:
    """The failed node's short name from dbt's wrapper line, e.g. ``stg_orders``."""
    found = _NODE_IN_WRAPPER.search(text)
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
    found = _TEST_NODE.search(text)
    if found is not None:
        node = found.group("test") or found.group("test2")
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
# Drift correlation
# ---------------------------------------------------------------------------------------------------------------


def _confidence(event: Mapping[str, Any]) -> float:
    """An event's confidence; observed facts (removals, type changes) carry none and count as certain."""
    value = event.get("confidence")
    try:
        return 1.0 if value is None else float(value)
    except (TypeError, ValueError):
        return 0.0


def _upper(value: Any) -> str:
    return "" if value is None else str(value).strip().upper()


def _same_relation(error_name: str, event_table: str) -> bool:
    """Match ``ORDERS``, ``RAW.ORDERS`` or ``DB.RAW.ORDERS`` against a drift key by trailing parts."""
    error_parts = [part for part in error_name.upper().replace('"', "").split(".") if part]
    event_parts = [part for part in event_table.upper().replace('"', "").split(".") if part]
    if not error_parts or not event_parts:
        return False
    shorter, longer = sorted((error_parts, event_parts), key=len)
    return longer[-len(shorter) :] == shorter


def _best(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(events, key=_confidence) if events else None


def _is_breaking(event: Mapping[str, Any]) -> bool:
    """An event's ``breaking`` flag; records written before the flag existed are judged from their types."""
    flag = event.get("breaking")
    if isinstance(flag, bool):
        return flag
    if event.get("kind") != "column_type_changed" or not event.get("old_type") or not event.get("new_type"):
        return True
    from airflow_selfheal.core.drift import is_widening

    return not is_widening(str(event["old_type"]), str(event["new_type"]))


def _on_lineage(event: Mapping[str, Any], lineage: Sequence[str]) -> bool:
    """Whether the event's table (or a renamed table's new name) is one the failing node reads."""
    tables = [_upper(event.get("table")), _upper(event.get("new_table"))]
    return any(table and _same_relation(relation, table) for relation in lineage for table in tables)


def _mentioned(text: str, column: str) -> bool:
    """Whether a column name occurs as a word in the error text (DuckDB quotes the failing SQL line)."""
    if not column:
        return False
    return re.search(rf"(?<![\w$]){re.escape(column)}(?![\w$])", text, re.IGNORECASE) is not None


def _type_change_cause(
    events: Sequence[Mapping[str, Any]], wanted: set[str], text: str, lineage: Sequence[str]
) -> Mapping[str, Any] | None:
    """
    The breaking type change that explains a type mismatch, most certain evidence first.

    Engines rarely name the column (``No function matches ... '/(VARCHAR, INTEGER_LITERAL)'``, ``Numeric value
    'abc' is not recognized``), so the candidates are the type changes on the relations the failing node reads
    (when its lineage is known); among them the one whose column the error names, else the one whose column the
    error text mentions, else the only one.
    """
    changes = [event for event in events if event["kind"] == "column_type_changed"]
    if lineage:
        on_lineage = [event for event in changes if _on_lineage(event, lineage)]
        changes = on_lineage or [event for event in changes if _upper(event.get("column")) in wanted]
    for matches in (
        [event for event in changes if _upper(event.get("column")) in wanted],
        [event for event in changes if _mentioned(text, _upper(event.get("column")))],
        changes,
    ):
        if matches:
            # The strongest evidence that matches anything decides; two different columns there is ambiguous.
            distinct = {(_upper(event.get("table")), _upper(event.get("column"))) for event in matches}
            return matches[0] if len(distinct) == 1 else None
    return None


def _root_cause(
    failure_class: FailureClass,
    columns: Sequence[str],
    relations: Sequence[str],
    drift_events: Sequence[Mapping[str, Any]],
    text: str = "",
    lineage: Sequence[str] = (),
) -> RootCause | None:
    """
    Name the upstream change behind a missing column, missing relation or type mismatch, if one fits.

    Non-breaking events (a widened column) never explain a failure and are left out. With ``lineage`` (the
    relations the failing node reads), events on those relations are preferred.
    """
    events = [
        event
        for event in drift_events
        if isinstance(event, Mapping) and event.get("kind") and _is_breaking(event)
    ]
    wanted = {column.upper() for column in columns}
    if failure_class is FailureClass.MISSING_COLUMN and wanted:
        matching = [
            event
            for event in events
            if event["kind"] in ("column_renamed", "column_removed") and _upper(event.get("column")) in wanted
        ]
        if lineage:
            matching = [event for event in matching if _on_lineage(event, lineage)] or matching
        event = _best(matching)
        if event is None:
            return None
        table, column = _upper(event.get("table")), _upper(event.get("column"))
        if event["kind"] == "column_renamed":
            message = (
                f"Upstream rename: {table}.{column} -> {table}.{_upper(event.get('new_column'))} "
                f"(confidence {_confidence(event):.2f})."
            )
            return RootCause("upstream_rename", message, dict(event))
        return RootCause(
            "upstream_column_removed", f"Upstream column removed: {table}.{column}.", dict(event)
        )
    if failure_class is FailureClass.TYPE_MISMATCH:
        event = _type_change_cause(events, wanted, text, lineage)
        if event is None:
            return None
        message = (
            f"Upstream type change: {_upper(event.get('table'))}.{_upper(event.get('column'))} "
            f"{event.get('old_type')} -> {event.get('new_type')}."
        )
        return RootCause("upstream_type_change", message, dict(event))
    if failure_class is FailureClass.MISSING_RELATION and relations:
        matching = [
            event
            for event in events
            if event["kind"] in ("table_removed", "table_renamed", "table_not_found")
            and any(_same_relation(relation, _upper(event.get("table"))) for relation in relations)
        ]
        event = _best(matching)
        if event is None:
            return None
        table = _upper(event.get("table"))
        if event["kind"] == "table_renamed":
            message = (
                f"Upstream table renamed: {table} -> {_upper(event.get('new_table'))} "
                f"(confidence {_confidence(event):.2f})."
            )
        else:
            message = f"Upstream table removed: {table}."
        return RootCause("upstream_table_removed", message, dict(event))
    return None


def lineage_relations(manifest: Mapping[str, Any] | None, unique_ids: Sequence[str]) -> list[str]:
    """
    ``SCHEMA.TABLE`` of every relation the nodes read, directly or through their ancestors (``parent_map``).

    A failed test reads what its model reads; a failed model reads its sources, seeds, snapshots and models.
    Sources are named by their ``identifier``, models by their ``alias``, as the warehouse stores them.

    :param manifest: the parsed ``manifest.json``, or None (then nothing is known).
    :param unique_ids: the failed nodes.
    :return: the relations, sorted; empty without a manifest.
    """
    if not isinstance(manifest, Mapping):
        return []
    nodes = manifest.get("nodes") or {}
    sources = manifest.get("sources") or {}
    parent_map = manifest.get("parent_map") or {}
    seen: set[str] = set()
    pending = [str(unique_id) for unique_id in unique_ids]
    while pending:
        current = pending.pop()
        parents = parent_map.get(current)
        if parents is None:
            found = nodes.get(current) or {}
            parents = (found.get("depends_on") or {}).get("nodes") or () if isinstance(found, Mapping) else ()
        for parent in parents:
            if parent not in seen:
                seen.add(str(parent))
                pending.append(str(parent))
    relations = set()
    for unique_id in seen:
        node = nodes.get(unique_id) or sources.get(unique_id)
        if not isinstance(node, Mapping) or not node.get("schema"):
            continue
        if node.get("resource_type") == "source":
            name = node.get("identifier") or node.get("name")
        elif node.get("resource_type") in ("model", "seed", "snapshot"):
            name = node.get("alias") or node.get("name")
        else:
            continue
        relations.add(f"{node['schema']}.{name}".upper().replace('"', ""))
    return sorted(relations)


# ---------------------------------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------------------------


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
