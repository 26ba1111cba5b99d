"""
The ordered rules that recognise a failure in its error text, most specific first.

Both wordings of the same failure are covered: real Snowflake and the embedded stand-in (DuckDB's wording
behind a fakesnow code). :func:`~airflow_selfheal.core.triage.classify` takes the first rule that matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_selfheal.core.triage.model import FailureClass

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
