"""
Error codes and what they mean: Snowflake's, the Python connector's, SQLSTATE classes, dbt Fusion's and DuckDB's.

A code is the most stable signal an error carries: its wording changes between releases and engines, its code
does not. :func:`code_verdict` reads the codes in an error text and returns the class they decide, or None
when no code is known or the known code carries several meanings (then the text decides).

Where each table comes from:

* **Snowflake server codes** (``NNNNNN (SQLSTATE):`` before the message): Snowflake does not publish one
  list of its codes. Each entry below names the documentation page for the behaviour the code reports, and
  the number itself is the one Snowflake prints with that message (the triage corpus under
  ``tests/data/triage`` holds a real message for every entry). The ``100xxx`` family is the data errors
  Snowflake raises while converting or loading a value (SQLSTATE class ``22``, "data exception"); see
  https://docs.snowflake.com/en/sql-reference/data-type-conversion.
* **Connector codes** ``25xxxx``: ``snowflake/connector/errorcode.py`` of snowflake-connector-python, the
  codes the driver raises itself (https://docs.snowflake.com/en/developer-guide/python-connector/python-connector-api#label-python-connector-exceptions).
* **SQLSTATE classes**: the two-character class of ISO/IEC 9075 (SQL standard) SQLSTATEs, which Snowflake
  reports with every error (https://docs.snowflake.com/en/developer-guide/snowflake-scripting/exceptions).
  A class is coarser than a code, so it is consulted only when no text rule recognised the message.

Every entry of every table is proved by a real message of the corpus under ``tests/data/triage``
(``tests/unit/core/triage/test_codes.py``); a code with no real message to prove it is not in a table.
* **dbt Fusion codes** (``dbtNNNN``): ``ErrorCode`` in dbt-labs/dbt-fusion ``crates/dbt-common/src/error``
  (``codes.rs``); 9000 and above are internal errors that Fusion reports as bugs.
* **DuckDB error types** (``Binder Error:``, ``Conversion Error:``...): the embedded stand-in wraps DuckDB's
  errors behind a fakesnow code that is only a guess, so for those messages DuckDB's own error type is the
  code (the exception classes of the ``duckdb`` package, https://duckdb.org/docs/stable/clients/python/overview).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from airflow_selfheal.core.triage.model import Action, FailureClass
from airflow_selfheal.core.triage.text import search_near

if TYPE_CHECKING:
    from collections.abc import Iterator

_F = FailureClass
_DOCS = "https://docs.snowflake.com/en"


class CodeMeaning(NamedTuple):
    """What one code means; ``action`` overrides the class's usual action when the code says why."""

    failure_class: FailureClass
    doc: str
    action: Action | None = None


#: Snowflake server codes that decide the class on their own.
SNOWFLAKE_CODES: dict[str, CodeMeaning] = {
    # SQL compilation
    "000904": CodeMeaning(_F.MISSING_COLUMN, f"{_DOCS}/sql-reference/identifiers-syntax"),
    "002003": CodeMeaning(_F.MISSING_RELATION, f"{_DOCS}/user-guide/security-access-control-overview"),
    "002043": CodeMeaning(_F.MISSING_RELATION, f"{_DOCS}/user-guide/security-access-control-overview"),
    "001003": CodeMeaning(_F.COMPILE_ERROR, f"{_DOCS}/sql-reference/constructs"),
    "002140": CodeMeaning(_F.COMPILE_ERROR, f"{_DOCS}/sql-reference-functions"),
    "001044": CodeMeaning(_F.TYPE_MISMATCH, f"{_DOCS}/sql-reference/data-type-conversion"),
    "002023": CodeMeaning(_F.TYPE_MISMATCH, f"{_DOCS}/sql-reference/data-type-conversion"),
    # Access control and login
    "003001": CodeMeaning(_F.PERMISSION, f"{_DOCS}/user-guide/security-access-control-overview"),
    # Sessions, timeouts and locks: a retry can succeed
    "000630": CodeMeaning(_F.TRANSIENT, f"{_DOCS}/sql-reference/parameters#statement-timeout-in-seconds"),
    "000625": CodeMeaning(_F.TRANSIENT, f"{_DOCS}/sql-reference/parameters#lock-timeout"),
    "000606": CodeMeaning(_F.TRANSIENT, f"{_DOCS}/user-guide/warehouses-tasks"),
    # Data errors (100xxx) the range rule would not get right: a size limit is not a type problem.
    "100078": CodeMeaning(_F.TYPE_MISMATCH, f"{_DOCS}/sql-reference/data-types-text#varchar"),
    "100082": CodeMeaning(
        _F.RESOURCE,
        f"{_DOCS}/sql-reference/data-types-semistructured#label-data-types-semistructured-size-limits",
        Action.ESCALATE,
    ),
}

#: Snowflake's login and session service answers with ``39xxxx`` codes (also as ``"code": "390144"`` in its
#: JSON replies): a refused login, except the session and token expiries, which a new login fixes.
#: https://docs.snowflake.com/en/user-guide/security-access-control-overview
_AUTH_RANGE = ("390", "391", "392", "393", "394")
_AUTH_RETRYABLE = frozenset({"390111", "390114", "390318"})

#: Codes that carry several meanings: the text decides (``000603`` is every internal error, ``100069`` every
#: JSON parse failure, too-large documents included, ``000002`` every unsupported feature).
SNOWFLAKE_GENERIC_CODES = frozenset({"000603", "100069", "000002", "000605"})

#: The snowflake-connector-python's own codes (``errorcode.py``).
CONNECTOR_CODES: dict[str, FailureClass] = {
    "250003": _F.TRANSIENT,  # ER_FAILED_TO_REQUEST
    # A connection missing what a login needs: account, user, password, a readable private key.
    **dict.fromkeys(("251001", "251005", "251006", "251008"), _F.PERMISSION),
}
#: ``250001`` "Failed to connect to DB" wraps the server's reason (a wrong password as much as a dead network),
#: so it is not in the table: the reason's wording decides, and its SQLSTATE ``08001`` is the fallback.
#: OCSP certificate checks (``254xxx``) fail when the responder cannot be reached: transient.
_OCSP_PREFIX = "254"

#: SQLSTATE classes (first two characters), and the exact SQLSTATEs that refine a class.
SQLSTATE_CLASSES: dict[str, FailureClass] = {
    "08": _F.TRANSIENT,  # connection exception
    "22": _F.TYPE_MISMATCH,  # data exception
}
SQLSTATES: dict[str, FailureClass] = {
    "08004": _F.PERMISSION,  # the server rejected the connection: Snowflake's login failures
    "42501": _F.PERMISSION,  # insufficient privilege
    "42S02": _F.MISSING_RELATION,  # base table or view not found
    "42601": _F.COMPILE_ERROR,  # syntax error
    "57014": _F.TRANSIENT,  # query canceled (statement timeout)
    "57P03": _F.TRANSIENT,  # cannot connect now
}
#: SQLSTATEs too general to mean anything alone (``22000`` holds both bad values and size limits).
_GENERAL_SQLSTATES = frozenset({"22000", "42000", "02000", "XX000", "P0000", "HY000"})

#: dbt Fusion's ``dbtNNNN`` codes: the CLI's (``crates/dbt-common/src/error/codes.rs``, 1000-8999) and the
#: SQL frontend's (``dbt_frontend_common::error::ErrorCode``, 100-999: syntax 1xx, semantic 2xx, plan 3xx,
#: expression 4xx). Only the syntax range is one class; a semantic error can be a missing table, a missing
#: column or a type, so those are listed one by one. 900-999 and 9000+ are internal errors Fusion reports as
#: bugs: the text decides those.
FUSION_RANGES: tuple[tuple[range, FailureClass], ...] = ((range(100, 200), _F.COMPILE_ERROR),)
FUSION_CODES: dict[int, FailureClass | None] = {
    214: _F.MISSING_RELATION,  # TableNotFound
    227: _F.MISSING_COLUMN,  # UnresolvedIdentifier
    1005: _F.COMPILE_ERROR,  # InvalidConfig
    1013: _F.COMPILE_ERROR,  # SerializationError (YAML)
    1501: None,  # JinjaError: also wraps whatever a macro raised, so the text decides
    1502: _F.COMPILE_ERROR,  # MacroSyntaxError
}

#: DuckDB's error types (the stand-in's wording). Binder errors span columns, functions and GROUP BY, so a
#: Binder Error the text rules did not place is a compile error of the SQL.
DUCKDB_TYPES: dict[str, FailureClass] = {
    "Parser": _F.COMPILE_ERROR,
    "Binder": _F.COMPILE_ERROR,
    "Catalog": _F.MISSING_RELATION,
    "Conversion": _F.TYPE_MISMATCH,
    "Out of Range": _F.TYPE_MISMATCH,
    "Constraint": _F.TYPE_MISMATCH,
    "Invalid Input": _F.TYPE_MISMATCH,
    "Out of Memory": _F.RESOURCE,
    "Permission": _F.PERMISSION,
}

# Starts with a digit class, which the regex engine scans for quickly; the character before is checked after.
_SNOWFLAKE_CODE = re.compile(r"(?P<code>\d{6})(?: \((?P<state>[0-9A-Z]{5})\))?:(?=\s)", re.IGNORECASE)
_FUSION_CODE = re.compile(r"\bdbt(?P<code>\d{3,4})\b")
_JSON_CODE = re.compile(r'"code"\s{0,4}:\s{0,4}"?(?P<code>\d{6})\b')


def _codes(text: str) -> Iterator[re.Match[str]]:
    """The ``NNNNNN (SQLSTATE):`` codes in the text, not counting digits inside longer numbers or names."""
    for found in _SNOWFLAKE_CODE.finditer(text):
        before = text[found.start() - 1] if found.start() else " "
        if not (before.isalnum() or before in "_."):
            yield found


def _duckdb_wording(text: str) -> re.Match[str] | None:
    return search_near(_DUCKDB_TYPE, text, text.lower(), (" error: ",), 20)


_DUCKDB_TYPE = re.compile(
    r"\b(?P<type>" + "|".join(re.escape(name) for name in DUCKDB_TYPES) + r") Error: ", re.IGNORECASE
)


class CodeVerdict(NamedTuple):
    """The class a code decides, the signal to show (``code 100038``) and the confidence."""

    failure_class: FailureClass
    signal: str
    confidence: float
    code: str | None = None
    action: Action | None = None


def duckdb_type(text: str) -> CodeVerdict | None:
    """
    DuckDB's error type in a stand-in message (``Binder Error:``), when the text has one.

    :param text: the cleaned error text.
    :return: the verdict of the error type, or None.
    """
    found = _duckdb_wording(text)
    if found is None:
        return None
    name = next(key for key in DUCKDB_TYPES if key.lower() == found.group("type").lower())
    return CodeVerdict(DUCKDB_TYPES[name], f"duckdb {name} Error", 0.7)


def code_verdict(text: str) -> CodeVerdict | None:
    """
    The class the codes in an error text decide, most specific first.

    A Snowflake or connector code comes first, then a dbt Fusion code. A code wrapped around DuckDB's wording is the stand-in's guess and decides nothing.

    :param text: the cleaned error text.
    :return: the verdict, or None when no code decides.
    """
    wrapped_duckdb = _duckdb_wording(text) is not None
    for found in _codes(text):
        code, state = found.group("code"), (found.group("state") or "").upper()
        if code.startswith("25") and not wrapped_duckdb:
            connector = CONNECTOR_CODES.get(code)
            if connector is None and code.startswith(_OCSP_PREFIX):
                connector = _F.TRANSIENT
            if connector is not None:
                return CodeVerdict(connector, f"code {code}", 0.95, code)
        if wrapped_duckdb or code in SNOWFLAKE_GENERIC_CODES:
            continue
        meaning = SNOWFLAKE_CODES.get(code)
        if meaning is None and code.startswith(_AUTH_RANGE):
            return _auth(code)
        if meaning is not None:
            return CodeVerdict(meaning.failure_class, f"code {code}", 0.95, code, meaning.action)
        if code.startswith("100") and state.startswith("22") and state not in _GENERAL_SQLSTATES:
            return CodeVerdict(_F.TYPE_MISMATCH, f"code {code} (data error)", 0.9, code)
    for found in _JSON_CODE.finditer(text):
        code = found.group("code")
        if code.startswith(_AUTH_RANGE):
            return _auth(code)
        meaning = SNOWFLAKE_CODES.get(code)
        if meaning is not None:
            return CodeVerdict(meaning.failure_class, f"code {code}", 0.95, code, meaning.action)
    fusion = _FUSION_CODE.search(text) if "dbt" in text else None
    if fusion is not None:
        number = int(fusion.group("code"))
        failure_class = fusion_class(number)
        if failure_class is not None:
            return CodeVerdict(failure_class, f"code dbt{number:04d}", 0.9, f"dbt{number:04d}")
    return None


def fusion_class(number: int) -> FailureClass | None:
    """The class a dbt Fusion code decides, exactly or by its range; None for an internal or generic one."""
    if number in FUSION_CODES:
        return FUSION_CODES[number]
    return next((failure_class for codes, failure_class in FUSION_RANGES if number in codes), None)


def _auth(code: str) -> CodeVerdict:
    if code in _AUTH_RETRYABLE:
        return CodeVerdict(_F.TRANSIENT, f"code {code}", 0.95, code)
    return CodeVerdict(_F.PERMISSION, f"code {code} (login)", 0.9, code)


def sqlstate_verdict(text: str) -> CodeVerdict | None:
    """
    The class the first specific SQLSTATE in the text decides; consulted after the text rules.

    :param text: the cleaned error text.
    :return: the verdict, or None.
    """
    if _duckdb_wording(text) is not None:
        return None
    for found in _codes(text):
        state = (found.group("state") or "").upper()
        if not state or state in _GENERAL_SQLSTATES:
            continue
        failure_class = SQLSTATES.get(state) or SQLSTATE_CLASSES.get(state[:2])
        if failure_class is not None:
            return CodeVerdict(failure_class, f"sqlstate {state}", 0.75, found.group("code"))
    return None
