"""
The ordered rules that recognise a failure in its error text, most specific first.

Both wordings of the same failure are covered: real Snowflake and the embedded stand-in (DuckDB's wording
behind a fakesnow code). :func:`~airflow_selfheal.core.triage.classify` takes the first rule that matches.
"""

from __future__ import annotations

import re
import re._parser as _sre  # the stdlib's own pattern parser (3.11+)
from dataclasses import dataclass
from typing import Any

from airflow_selfheal.core.triage.model import Action, FailureClass
from airflow_selfheal.core.triage.text import search_near

# ---------------------------------------------------------------------------------------------------------------
# Rules. Named groups carry identifiers; the group name's prefix says what kind of name it is:
#   column*, relation*  Snowflake identifiers, upper-cased unless double-quoted in the error;
#   value*, name*, test*  kept as written.
# Each pattern starts with literal text and repeats only bounded character classes.
# ---------------------------------------------------------------------------------------------------------------


def _needles(items: Any) -> frozenset[str] | None:
    """
    Lower-case literals of which at least one occurs in every match of a parsed pattern; None when unknown.

    A cheap ``in`` test on the lower-cased text then decides whether the regex needs to run at all: on a
    20 kB log most rules have nothing to find, and a case-insensitive alternation costs a millisecond there.
    """
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) >= _NEEDLE_MIN:
            candidates.append(frozenset({"".join(run).lower()}))
        run.clear()

    for op, value in items:
        if op is _sre.LITERAL:
            run.append(chr(value))
            continue
        flush()
        if op is _sre.SUBPATTERN:
            inner = _needles(value[-1])
        elif op is _sre.BRANCH:
            branches = [_needles(branch) for branch in value[1]]
            inner = None if any(b is None for b in branches) else frozenset().union(*branches)  # type: ignore[arg-type]
        elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and value[0] >= 1:
            inner = _needles(value[2])
        else:
            inner = None
        if inner:
            candidates.append(inner)
    flush()
    if not candidates:
        return None
    return min(candidates, key=lambda found: (len(found), -min(len(needle) for needle in found)))


def _needles_of(pattern: str) -> frozenset[str] | None:
    try:
        return _needles(_sre.parse(pattern, re.IGNORECASE))
    except Exception:  # the parser is internal to the re module; without it every rule simply runs
        return None


@dataclass(frozen=True)
class _Rule:
    rule_id: str
    failure_class: FailureClass
    pattern: re.Pattern[str]
    # Patterns searched inside the matched text and the lines just after it, for names the main pattern
    # cannot reach without unbounded lookahead (e.g. the source column of a DuckDB conversion error).
    details: tuple[re.Pattern[str], ...] = ()
    #: ``override``: a hard limit named in so many words, read before any code; ``specific``: the default;
    #: ``generic``: a wrapper wording (``Compilation Error``) read only after codes and SQLSTATEs.
    tier: str = "specific"
    #: The action when it differs from the class's usual one (a quota is a resource problem retry cannot fix).
    action: Action | None = None
    #: Lower-case literals one of which every match contains (see :func:`_needles`); None: always search.
    needles: frozenset[str] | None = None

    def search(self, text: str, lowered: str) -> re.Match[str] | None:
        """Search ``text`` (``lowered`` is ``text.lower()``) from just before the first needle, if any."""
        if self.needles is None:
            return self.pattern.search(text)
        return search_near(self.pattern, text, lowered, self.needles, _BEFORE_NEEDLE)


def _rule(
    rule_id: str,
    failure_class: FailureClass,
    pattern: str,
    *details: str,
    tier: str = "specific",
    action: Action | None = None,
) -> _Rule:
    return _Rule(
        rule_id,
        failure_class,
        re.compile(pattern, re.IGNORECASE),
        tuple(re.compile(detail, re.IGNORECASE) for detail in details),
        tier,
        action,
        _needles_of(pattern),
    )


_NEEDLE_MIN = 3
# No rule's pattern reaches further than this before its needle (names are at most 255 characters, the
# longest bounded gap 300), so searching from there finds the same first match as searching the whole text.
_BEFORE_NEEDLE = 1_200

_Q = r"'(?P<{}>[^'\n]{{1,255}})'"  # a single-quoted name
_DQ = r'"(?P<{}>[^"\n]{{1,255}})"'  # a double-quoted name


def _sq(group: str) -> str:
    return _Q.format(group)


def _dq(group: str) -> str:
    return _DQ.format(group)


_F = FailureClass
RULES: tuple[_Rule, ...] = (
    # --- Hard limits, named in so many words. Retrying cannot help, so they escalate whatever their code says.
    _rule(
        "sf_resource_monitor_quota",
        _F.RESOURCE,
        r"resource monitor [^\n]{0,260}?exceeded its (?:credit )?quota",
        tier="override",
        action=Action.ESCALATE,
    ),
    _rule(
        "sf_max_lob_size",
        _F.RESOURCE,
        r"Max(?:imum)? LOB size \(\d{1,18}\) exceeded",
        tier="override",
        action=Action.ESCALATE,
    ),
    _rule(
        "size_limit",
        _F.RESOURCE,
        r"\b(?:document|JSON|XML|object|array|row|record|result|response|file|query text|statement)"
        r" (?:size )?(?:is )?too (?:large|big)\b|exceeds? (?:the )?(?:max(?:imum)?|allowed) (?:allowed )?(?:size|length) (?:of|limit)"
        r"|\b(?:size|length) (?:limit )?exceeded\b|exceeds? the maximum (?:allowed )?(?:size|length)\b",
        tier="override",
        action=Action.ESCALATE,
    ),
    # --- Transient, keyed by Snowflake's own codes and wording (more specific than any SQL rule below).
    _rule(
        "token_expired",
        _F.TRANSIENT,
        # A session or access token is refreshed by logging in again; a password that expired is not.
        r"\b390114\b|(?:Authentication|access|session|OAuth access|OAuth) token (?:has )?expired"
        r"|Session no longer exists",
    ),
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
        r"\b390100\b|Incorrect username or password (?:was )?specified|\b390189\b|specified in the connect string does not exist or not authorized",
    ),
    _rule(
        "login_refused",
        _F.PERMISSION,
        r"(?:user|account)(?: account)? (?:is|has been) (?:temporarily )?locked|password has expired|Verify the account name is correct"
        r"|\bLogin failed\b|\bAuthentication failed\b|(?:JWT|access|OAuth access|programmatic access) token is invalid"
        r"|Invalid OAuth access token|\bHTTP 40[13]\b|\b403:? Forbidden\b|\b401:? Unauthorized\b",
    ),
    _rule(
        "privilege_missing",
        _F.PERMISSION,
        r"role has no privileges|does not have (?:the )?(?:required )?(?:privileges?|permissions?)\b"
        r"|\bpermission denied\b|\baccess denied\b|not authorized to perform|is not granted to (?:this |the )?(?:user|role)",
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
    # PostgreSQL's and Redshift's wording, which dbt and some warehouses repeat.
    _rule(
        "column_does_not_exist",
        _F.MISSING_COLUMN,
        r"\bcolumn (?:"
        + _dq("column_quoted")
        + r"|"
        + _sq("column_single")
        + r"|(?P<column>[\w$.]{1,255})) does not exist",
    ),
    # dbt Fusion's static analysis: "No column X found".
    _rule("fusion_no_column", _F.MISSING_COLUMN, r"\bNo column (?P<column>[\w$.\"]{1,255}) found\b"),
    _rule(
        "duckdb_column_not_found",
        _F.MISSING_COLUMN,
        r"Referenced (?:update )?column (?:" + _dq("column") + r"|(?P<column_bare>[\w$]{1,255})) not found",
    ),
    _rule(
        "duckdb_table_has_no_column",
        _F.MISSING_COLUMN,
        r"(?:Table|Values list|View|CTE|Subquery) "
        + _dq("relation")
        + r" does not have a column (?:named|with name) "
        + _dq("column"),
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
        "relation_missing",
        _F.MISSING_RELATION,
        r"(?:Table|View|Relation) " + _sq("relation") + r" is missing"
        r"|Referenced table " + _dq("relation_ref") + r" not found",
    ),
    # Snowflake's generic object error (002043), worded without the object's name.
    _rule(
        "sf_object_not_found_generic",
        _F.MISSING_RELATION,
        r"Object does not exist, or operation cannot be performed",
    ),
    _rule(
        "duckdb_table_does_not_exist",
        _F.MISSING_RELATION,
        r"(?:Table|View|Schema) with name (?:"
        + _dq("relation_quoted")
        + r"|(?P<relation>[^\s\"!]{1,255})) does not exist",
    ),
    _rule(
        "relation_does_not_exist",
        _F.MISSING_RELATION,
        r"\b(?:relation|schema|database|table|view) (?:"
        + _dq("relation_quoted")
        + r"|(?P<relation>[\w$.]{1,255}))"
        r" does not exist",
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
        "sf_string_too_long",
        _F.TYPE_MISMATCH,
        r"String " + _sq("value") + r" is too long and would be truncated",
    ),
    _rule("too_long_truncated", _F.TYPE_MISMATCH, r"is too long and would be truncated"),
    _rule(
        "value_out_of_range",
        _F.TYPE_MISMATCH,
        r"(?:Numeric value " + _sq("value") + r" is out of range|Number out of representable range"
        r"|Value out of range|out of range for (?:type|column) (?P<type>[\w()]{1,64})|\bis out of range\b)",
    ),
    _rule("division_by_zero", _F.TYPE_MISMATCH, r"\bDivision by zero\b|\bdivide by zero\b"),
    _rule(
        "sf_null_in_non_nullable",
        _F.TYPE_MISMATCH,
        r"NULL result in a non-nullable column|violates not-null constraint"
        r"|NOT NULL constraint failed|NOT NULL constraint violated",
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
        "duckdb_no_best_candidate",
        _F.TYPE_MISMATCH,
        r"Could not choose a best candidate function for the function call " + _dq("name"),
    ),
    _rule(
        "sf_function_argument_type",
        _F.TYPE_MISMATCH,
        r"Function (?P<name>[\w$.]{1,255}) does not support (?P<type>[\w(), ]{1,80}?) argument type",
    ),
    _rule(
        "incompatible_types",
        _F.TYPE_MISMATCH,
        r"\b(?:inconsistent|incompatible|mismatched) (?:[a-z]{1,20} )?(?:data )?types?\b"
        r"|\b(?:invalid|unsupported|illegal) (?:data |column |argument |value |time |timestamp |date |numeric )?types?\b"
        r"|does not support the (?:data )?type|should (?:have|be) an? [\w ]{1,40}? type,? but got"
        r"|\bCannot cast\b|\bCast error\b|cannot change column [^\n]{1,255}? from type",
    ),
    # --- Dependency: the dbt graph or the installed packages lack something.
    _rule(
        "dbt_package_unreadable",
        _F.DEPENDENCY_ERROR,
        r"Failed to read package|Version error for package|Could not find a satisfactory version",
    ),
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
        "dbt_project_invalid",
        _F.COMPILE_ERROR,
        r"Not a dbt project|Additional properties are not allowed|Invalid (?:project )?config version"
        r"|Could not find profile named",
    ),
    _rule(
        "yaml_error",
        _F.COMPILE_ERROR,
        r"\bYAML error\b|error parsing YAML|while parsing a (?:block|flow) (?:mapping|sequence)"
        r"|mapping values are not allowed here|could not find expected ':'",
    ),
    _rule(
        "parse_error",
        _F.COMPILE_ERROR,
        r"mismatched input '[^'\n]{1,255}' expecting|SQL command not properly ended|\bunexpected token\b"
        r"|Error tokenizing '"
        # A column declared twice.
        r"|\bColumn (?:with name )?(?:\"[^\"\n]{1,255}\"|'[^'\n]{1,255}'|[\w$]{1,255}) already exists|\bduplicate column name\b",
    ),
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
    _rule("dbt_parsing_error", _F.COMPILE_ERROR, r"\bParsing Error\b", tier="generic"),
    _rule("dbt_compilation_error", _F.COMPILE_ERROR, r"\bCompilation Error\b", tier="generic"),
    _rule("sf_sql_compilation_error", _F.COMPILE_ERROR, r"SQL compilation error", tier="generic"),
    _rule("syntax_error", _F.COMPILE_ERROR, r"\bsyntax error\b", tier="generic"),
    # --- Data tests. Reached only when no database or compile error matched: a test that errors is an error.
    _rule(
        "dbt_test_failure",
        _F.TEST_SINGULAR,
        r"Got (?P<count>\d{1,18}) results?, configured to (?:fail|warn) if",
    ),
    # A test's header line alone (dbt's summary of a package test such as dbt_utils.expression_is_true).
    _rule("dbt_test_header", _F.TEST_SINGULAR, r"\b(?:Failure|Warning) in test (?P<test>[\w.-]{1,512})"),
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
        "memory_limit",
        _F.RESOURCE,
        r"\bmemory limits? (?:exceeded|reached)|exceeded [^\n]{0,60}?memory limits?\b",
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
        r"Could not connect to Snowflake backend|Failed to execute request",
    ),
    _rule(
        "http_unavailable",
        _F.TRANSIENT,
        r"\b(?:502|503|504) (?:Bad Gateway|Service Unavailable|Gateway Time-?out)|\bHTTP (?:Error )?(?:502|503|504)\b"
        r"|Service is unavailable|\b(?:500|503|504) Server Error|\b500:? Internal Server Error|\b429 Too Many Requests|Too Many Requests"
        r"|\b(?:status(?: code)?|HTTP ?(?:Error|status)?|response code)[:= ]{1,3}(?:429|502|503|504)\b"
        r"|\bService Unavailable\b|\bservice is temporarily unavailable",
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
        r"|Network is unreachable|No route to host|getaddrinfo failed|nodename nor servname provided"
        r"|\bECONNRESET\b|\bECONNREFUSED\b|\bETIMEDOUT\b|\[Errno (?:104|110|111|113)\]|ConnectionResetError"
        r"|SSL(?:Error|EOFError)|socket\.timeout|IncompleteRead|ChunkedEncodingError|ProtocolError\(",
    ),
)
