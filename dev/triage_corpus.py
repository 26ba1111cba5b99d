"""Provoke real failures offline and print them as labelled YAML entries for the triage classifier's corpus.

Every text is the exact ``str(exc)`` (or, for dbt, the exact JSON log lines) that the locked toolchain produced
on this machine, so the corpus holds no paraphrases. Four sources, all in-process or on loopback:

* ``fakesnow``: the real ``snowflake.connector`` under ``fakesnow.patch()``, against a small ``ORDERS`` table.
  Most errors come wrapped as the connector's ``ProgrammingError`` with a Snowflake-style code (``002043
  (02000): Binder Error: ...``); some DuckDB and sqlglot exceptions escape unwrapped, and each entry's
  ``# raised:`` comment names the class that was raised.
* ``duckdb``: the same failures in plain DuckDB, whose wording differs (no code, ``LINE 1`` carets,
  ``Did you mean``), plus the memory, permission and file errors only DuckDB gives.
* ``network``: the connector logging in to loopback ports that refuse, reset, hang or answer an HTTP error.
* ``dbt``: ``dbt run``/``dbt parse --log-format json`` against the stand-in of ``dev/warehouse.py`` in a temporary
  project; the text is the run's JSON log lines about the failing node (their ``ts``, ``pid`` and
  ``invocation_id`` change from run to run, everything else does not). Then ``dbt test`` in the same project,
  whose data tests (built-in generic, custom generic, singular, one renamed) all return rows from deliberately bad
  tables: each test gives one entry with its JSON log lines (result, failure or warning summary, ``Got N
  results``) and one with the same lines as dbt prints them in plain text (a second ``dbt test`` without
  ``--log-format json``; each line starts with a colour reset and the time of day, which change too).

The labels are ours, written per case below from what the message says (see ``CLASSES``), never from the
classifier. A case that stops failing (a toolchain upgrade) aborts the run rather than vanishing silently.

Usage::

    .venv/bin/python -m dev.triage_corpus > tests/data/triage/live.yaml
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REGENERATE = ".venv/bin/python -m dev.triage_corpus > tests/data/triage/live.yaml"
SCRIPT = "dev/triage_corpus.py"
LOOPBACK = "127.0.0.1"
# Ports for the fake HTTP endpoints: fixed (first free one wins) because the connector's 401/403 texts name it.
FIRST_FIXED_PORT = 47811
PLAIN = re.compile(r"[a-z][a-z0-9_]*")  # ids, engines, classes: written unquoted, unless YAML 1.1 reads them
YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
CLASSES = frozenset(
    {
        "missing_column",
        "missing_relation",
        "type_mismatch",
        "compile_error",
        "dependency_error",
        "transient",
        "permission",
        "resource",
        "unknown",
        "test_unique",
        "test_not_null",
        "test_accepted_values",
        "test_relationships",
        "test_singular",
        "ambiguous",
    }
)
TOOLCHAIN = (
    "fakesnow",
    "duckdb",
    "snowflake-connector-python",
    "dbt-core",
    "dbt-snowflake",
    "sqlglot",
    "PyYAML",
)


@dataclass(frozen=True)
class Case:
    """One failure to provoke: ``name`` becomes the id suffix, ``label`` the expected class."""

    name: str
    sql: str
    label: str
    candidates: tuple[str, ...] = ()
    note: str = ""


# ---------------------------------------------------------------------------------------------------- fakesnow

FAKESNOW_SETUP = (
    "CREATE TABLE ORDERS (ORDER_ID INT NOT NULL, AMOUNT NUMBER(10,2), NOTE VARCHAR(5), PAYLOAD VARIANT, "
    "ORDERED_AT TIMESTAMP)",
    "INSERT INTO ORDERS SELECT 1, 9.50, 'ab', PARSE_JSON('{\"a\": \"x\", \"n\": 5}'), '2024-01-01 08:00:00'",
    "CREATE TABLE CUSTOMERS (CUSTOMER_ID INT, ORDER_ID INT, NAME VARCHAR)",
    "CREATE TABLE SMALL (N NUMBER(3,0))",
)

FAKESNOW_CASES = (
    # missing column
    Case("missing_column_select", "SELECT NOPE FROM ORDERS", "missing_column"),
    Case("missing_column_where", "SELECT ORDER_ID FROM ORDERS WHERE NOPE = 1", "missing_column"),
    Case(
        "missing_column_join",
        "SELECT o.ORDER_ID FROM ORDERS o JOIN CUSTOMERS c ON o.NOPE = c.ORDER_ID",
        "missing_column",
    ),
    Case("missing_column_qualified_alias", "SELECT o.NOPE FROM ORDERS o", "missing_column"),
    Case(
        "missing_column_using_join_alias",
        "SELECT c.NOPE FROM ORDERS o JOIN CUSTOMERS c USING (ORDER_ID)",
        "missing_column",
    ),
    Case(
        "missing_column_qualify_partition",
        "SELECT ORDER_ID FROM ORDERS QUALIFY ROW_NUMBER() OVER (PARTITION BY NOPE ORDER BY ORDERED_AT) = 1",
        "missing_column",
    ),
    Case(
        "missing_column_within_group",
        "SELECT ARRAY_AGG(ORDER_ID) WITHIN GROUP (ORDER BY NOPE) FROM ORDERS",
        "missing_column",
    ),
    Case("missing_column_order_by", "SELECT ORDER_ID FROM ORDERS ORDER BY NOPE", "missing_column"),
    Case("missing_column_insert", "INSERT INTO ORDERS (ORDER_ID, NOPE) VALUES (2, 1)", "missing_column"),
    Case("missing_column_update", "UPDATE ORDERS SET NOPE = 1", "missing_column"),
    # missing relation
    Case("missing_table", "SELECT * FROM NOPE_TABLE", "missing_relation"),
    Case("missing_table_insert", "INSERT INTO NOPE_TABLE VALUES (1)", "missing_relation"),
    Case("missing_view_drop", "DROP VIEW NOPE_VIEW", "missing_relation"),
    Case("missing_schema", "SELECT * FROM NOSCHEMA.ORDERS", "missing_relation"),
    Case("missing_database", "SELECT * FROM NODB.S.ORDERS", "missing_relation"),
    Case(
        "missing_database_information_schema",
        "SELECT * FROM NODB.INFORMATION_SCHEMA.TABLES",
        "missing_relation",
    ),
    Case("missing_database_use", "USE DATABASE NODB", "missing_relation"),
    Case("missing_schema_use", "USE SCHEMA NOSCHEMA", "missing_relation"),
    # type mismatch: conversions and parses
    Case("numeric_empty_string_cast", "SELECT ''::NUMBER", "type_mismatch"),
    Case("numeric_abc_cast", "SELECT 'abc'::INT", "type_mismatch"),
    Case("numeric_to_number_abc", "SELECT TO_NUMBER('abc')", "type_mismatch"),
    Case("numeric_to_number_empty", "SELECT TO_NUMBER('')", "type_mismatch"),
    Case(
        "numeric_string_compared_to_int_column",
        "SELECT * FROM ORDERS WHERE ORDER_ID = 'abc'",
        "type_mismatch",
    ),
    Case(
        "numeric_dateadd_string_amount", "SELECT DATEADD(day, 'x', ORDERED_AT) FROM ORDERS", "type_mismatch"
    ),
    Case("boolean_abc_cast", "SELECT 'abc'::BOOLEAN", "type_mismatch"),
    Case("date_out_of_range_cast", "SELECT '2024-13-45'::DATE", "type_mismatch"),
    Case("date_to_date_bad_format", "SELECT TO_DATE('not a date')", "type_mismatch"),
    Case("date_to_date_format_mismatch", "SELECT TO_DATE('2024-01-01', 'DD/MM/YYYY')", "type_mismatch"),
    Case("timestamp_bad_format_cast", "SELECT 'yesterday-ish'::TIMESTAMP", "type_mismatch"),
    Case("timestamp_out_of_range", "SELECT TO_TIMESTAMP('2024-02-30 25:00:00')", "type_mismatch"),
    Case("timestamp_format_mismatch", "SELECT TO_TIMESTAMP('31/12/2024', 'YYYY-MM-DD')", "type_mismatch"),
    Case("variant_field_to_timestamp", "SELECT PAYLOAD:a::TIMESTAMP FROM ORDERS", "type_mismatch"),
    Case(
        "variant_field_to_timestamp_function", "SELECT TO_TIMESTAMP(PAYLOAD:a) FROM ORDERS", "type_mismatch"
    ),
    Case("variant_field_to_number", "SELECT PAYLOAD:a::NUMBER FROM ORDERS", "type_mismatch"),
    Case("variant_field_to_date", "SELECT PAYLOAD:n::DATE FROM ORDERS", "type_mismatch"),
    Case("variant_object_to_timestamp", "SELECT PAYLOAD::TIMESTAMP FROM ORDERS", "type_mismatch"),
    Case("json_malformed", "SELECT PARSE_JSON('{bad')", "type_mismatch"),
    # type mismatch: range, division, NULL
    Case("number_out_of_range_insert", "INSERT INTO SMALL VALUES (12345)", "type_mismatch"),
    Case("number_out_of_range_cast", "SELECT 1000::NUMBER(3,0)", "type_mismatch"),
    Case("integer_overflow", "SELECT 9223372036854775807 + 1", "type_mismatch"),
    Case("division_by_zero_modulo", "SELECT ORDER_ID % 0 FROM ORDERS", "type_mismatch"),
    Case("not_null_insert", "INSERT INTO ORDERS (ORDER_ID, NOTE) VALUES (NULL, 'x')", "type_mismatch"),
    # type mismatch: incompatible types and argument types
    Case("compare_timestamp_boolean", "SELECT * FROM ORDERS WHERE ORDERED_AT > TRUE", "type_mismatch"),
    Case("compare_timestamp_integer", "SELECT * FROM ORDERS WHERE ORDERED_AT = 5", "type_mismatch"),
    Case("union_timestamp_decimal", "SELECT ORDERED_AT FROM ORDERS UNION ALL SELECT 1.5", "type_mismatch"),
    Case("coalesce_mixed_types", "SELECT COALESCE(ORDERED_AT, 1) FROM ORDERS", "type_mismatch"),
    Case("function_argument_types_substr", "SELECT SUBSTR(ORDERED_AT, 'a') FROM ORDERS", "type_mismatch"),
    Case(
        "function_argument_types_datediff",
        "SELECT DATEDIFF(day, NOTE, ORDERED_AT) FROM ORDERS",
        "type_mismatch",
    ),
    Case("function_argument_types_lpad", "SELECT LPAD(ORDER_ID, 'x') FROM ORDERS", "type_mismatch"),
    Case("function_argument_best_candidate_abs", "SELECT ABS('x')", "type_mismatch"),
    Case("operator_argument_types_plus", "SELECT ORDER_ID + NOTE FROM ORDERS", "type_mismatch"),
    # compile errors
    Case("syntax_misspelled_keyword", "SELEC 1", "compile_error"),
    Case("syntax_misspelled_from", "SELECT * FORM ORDERS", "compile_error"),
    Case("syntax_missing_table_name", "SELECT FROM WHERE", "compile_error"),
    Case("syntax_unclosed_parenthesis", "SELECT (1", "compile_error"),
    Case("syntax_unclosed_in_list", "SELECT * FROM ORDERS WHERE ORDER_ID IN (1,", "compile_error"),
    Case("syntax_empty_where", "SELECT * FROM ORDERS WHERE", "compile_error"),
    Case("syntax_empty_order_by", "SELECT * FROM ORDERS ORDER BY", "compile_error"),
    Case("syntax_empty_group_by", "SELECT ORDER_ID FROM ORDERS GROUP BY", "compile_error"),
    Case("syntax_missing_commas", "SELECT ORDER_ID AMOUNT NOTE FROM ORDERS", "compile_error"),
    Case("syntax_unterminated_string", "SELECT 'unterminated FROM ORDERS", "compile_error"),
    Case("syntax_reserved_word", "SELECT GRANT", "compile_error"),
    Case("syntax_table_function", "SELECT * FROM TABLE(NOPE_UDTF())", "compile_error"),
    Case("function_too_many_arguments", "SELECT UPPER(ORDERED_AT, 3) FROM ORDERS", "compile_error"),
    Case("unknown_function", "SELECT NOPE_FN(ORDER_ID) FROM ORDERS", "compile_error"),
    Case(
        "ambiguous_column",
        "SELECT ORDER_ID FROM ORDERS o JOIN CUSTOMERS c ON o.ORDER_ID = c.ORDER_ID",
        "compile_error",
    ),
    Case("duplicate_column_create", "CREATE TABLE DUP (A INT, A INT)", "compile_error"),
    Case("duplicate_column_alter_add", "ALTER TABLE ORDERS ADD COLUMN NOTE VARCHAR", "compile_error"),
    Case("group_by_missing_column", "SELECT ORDER_ID, SUM(AMOUNT) FROM ORDERS", "compile_error"),
    Case("group_by_wrong_column", "SELECT NOTE, COUNT(*) FROM ORDERS GROUP BY ORDER_ID", "compile_error"),
    Case("group_by_aggregate", "SELECT SUM(AMOUNT) FROM ORDERS GROUP BY SUM(AMOUNT)", "compile_error"),
    Case("group_by_position_out_of_range", "SELECT * FROM ORDERS GROUP BY 7", "compile_error"),
    Case("group_by_having_without_group", "SELECT ORDER_ID FROM ORDERS HAVING COUNT(*) > 1", "compile_error"),
    Case("aggregate_in_where", "SELECT * FROM ORDERS WHERE SUM(AMOUNT) > 1", "compile_error"),
    Case("aggregate_nested", "SELECT COUNT(SUM(AMOUNT)) FROM ORDERS", "compile_error"),
    Case(
        "union_column_count",
        "SELECT ORDER_ID FROM ORDERS UNION SELECT ORDER_ID, NAME FROM CUSTOMERS",
        "compile_error",
    ),
    # ambiguous
    Case(
        "table_already_exists",
        "CREATE TABLE ORDERS (X INT)",
        "ambiguous",
        ("compile_error", "unknown"),
        "A name conflict, which no class covers; the code 002003 (42S02) and 'Table with name' are those of a "
        "missing table, so a classifier must read 'already exists'.",
    ),
    Case(
        "invalid_regex",
        "SELECT REGEXP_LIKE(NOTE, '(') FROM ORDERS",
        "ambiguous",
        ("type_mismatch", "compile_error", "unknown"),
        "An invalid regular-expression argument, but the text ('missing ): (') names neither a regex nor a "
        "type and reads like a SQL syntax error.",
    ),
)

# ------------------------------------------------------------------------------------------------------ duckdb

DUCKDB_SETUP = (
    "CREATE TABLE ORDERS (ORDER_ID INT NOT NULL, AMOUNT DECIMAL(10,2), NOTE VARCHAR(5), PAYLOAD JSON, "
    "ORDERED_AT TIMESTAMP)",
    "INSERT INTO ORDERS VALUES (1, 9.50, 'ab', '{\"a\": \"x\", \"n\": 5}', '2024-01-01 08:00:00')",
    "CREATE TABLE CUSTOMERS (CUSTOMER_ID INT, ORDER_ID INT, NAME VARCHAR)",
    "CREATE TABLE SMALL (N DECIMAL(3,0))",
)

DUCKDB_CASES = (
    Case("missing_column_select", "SELECT NOPE FROM ORDERS", "missing_column"),
    Case("missing_column_qualified_alias", "SELECT o.NOPE FROM ORDERS o", "missing_column"),
    Case("missing_table", "SELECT * FROM NOPE_TABLE", "missing_relation"),
    Case("missing_view_drop", "DROP VIEW NOPE_VIEW", "missing_relation"),
    Case("missing_schema", "SELECT * FROM NOSCHEMA.ORDERS", "missing_relation"),
    Case("missing_database", "SELECT * FROM NODB.S.ORDERS", "missing_relation"),
    Case("numeric_empty_string_cast", "SELECT ''::INTEGER", "type_mismatch"),
    Case("numeric_abc_cast", "SELECT 'abc'::INTEGER", "type_mismatch"),
    Case("numeric_abc_decimal_cast", "SELECT 'abc'::DECIMAL(10,2)", "type_mismatch"),
    Case("date_out_of_range_cast", "SELECT '2024-13-45'::DATE", "type_mismatch"),
    Case("timestamp_bad_format_cast", "SELECT 'not a date'::TIMESTAMP", "type_mismatch"),
    Case("timestamp_strptime_mismatch", "SELECT strptime('31/12/2024', '%Y-%m-%d')", "type_mismatch"),
    Case("json_field_to_timestamp", "SELECT (PAYLOAD->>'a')::TIMESTAMP FROM ORDERS", "type_mismatch"),
    Case("json_field_to_integer", "SELECT (PAYLOAD->'a')::INTEGER FROM ORDERS", "type_mismatch"),
    Case("json_object_to_timestamp", "SELECT PAYLOAD::TIMESTAMP FROM ORDERS", "type_mismatch"),
    Case("json_malformed", "SELECT json('{bad')", "type_mismatch"),
    Case("number_out_of_range_insert", "INSERT INTO SMALL VALUES (12345)", "type_mismatch"),
    Case("number_out_of_range_tinyint", "SELECT 300::TINYINT", "type_mismatch"),
    Case("integer_overflow", "SELECT 9223372036854775807::BIGINT + 1", "type_mismatch"),
    Case("division_by_zero_integer", "SELECT ORDER_ID // 0 FROM ORDERS", "type_mismatch"),
    Case("not_null_insert", "INSERT INTO ORDERS (ORDER_ID, NOTE) VALUES (NULL, 'x')", "type_mismatch"),
    Case("compare_timestamp_boolean", "SELECT * FROM ORDERS WHERE ORDERED_AT > TRUE", "type_mismatch"),
    Case("compare_timestamp_integer", "SELECT * FROM ORDERS WHERE ORDERED_AT = 5", "type_mismatch"),
    Case(
        "function_argument_types_substring", "SELECT substring(ORDERED_AT, 'a') FROM ORDERS", "type_mismatch"
    ),
    Case("function_argument_types_upper", "SELECT upper(ORDERED_AT, 3) FROM ORDERS", "type_mismatch"),
    Case("syntax_misspelled_keyword", "SELEC 1", "compile_error"),
    Case("syntax_misspelled_from", "SELECT * FORM ORDERS", "compile_error"),
    Case("syntax_unclosed_parenthesis", "SELECT (1", "compile_error"),
    Case("syntax_empty_where", "SELECT * FROM ORDERS WHERE", "compile_error"),
    Case("syntax_unterminated_string", "SELECT 'unterminated FROM ORDERS", "compile_error"),
    Case("unknown_function", "SELECT nope_fn(ORDER_ID) FROM ORDERS", "compile_error"),
    Case(
        "ambiguous_column",
        "SELECT ORDER_ID FROM ORDERS o JOIN CUSTOMERS c ON o.ORDER_ID = c.ORDER_ID",
        "compile_error",
    ),
    Case("duplicate_column_create", "CREATE TABLE DUP (A INT, A INT)", "compile_error"),
    Case("group_by_missing_column", "SELECT ORDER_ID, SUM(AMOUNT) FROM ORDERS", "compile_error"),
    Case("group_by_aggregate", "SELECT SUM(AMOUNT) FROM ORDERS GROUP BY SUM(AMOUNT)", "compile_error"),
)

# An in-memory database capped at 32 MB with spilling off: one large aggregate runs out of memory at once.
DUCKDB_OOM_SQL = "SELECT list(range) FROM range(20000000)"
DUCKDB_NO_FILES_SQL = "SELECT * FROM read_csv('/etc/hostname')"
DUCKDB_READ_ONLY_SQL = "INSERT INTO T VALUES (1)"
DUCKDB_MISSING_FILE = "/nonexistent-triage-corpus/warehouse.duckdb"


# ----------------------------------------------------------------------------------------------------- helpers


def _raised(exc: BaseException) -> str:
    module = type(exc).__module__
    return f"{'duckdb' if module == '_duckdb' else module}.{type(exc).__qualname__}"


def _entry(
    engine: str,
    case: Case,
    text: str,
    raised: str,
    source: str | None = None,
    **extra: str,
) -> dict[str, Any]:
    assert case.label in CLASSES, case
    assert (case.label == "ambiguous") == bool(case.candidates), case
    entry: dict[str, Any] = {
        "id": f"live_{engine}_{case.name}",
        "source": source or f"live: {SCRIPT} {engine}",
        "engine": engine,
    }
    if case.sql:
        entry["sql"] = case.sql
    entry.update(extra)
    entry["text"] = text
    entry["expected_class"] = case.label
    if case.candidates:
        entry["candidates"] = list(case.candidates)
        entry["note"] = case.note
    entry["_raised"] = raised
    return entry


def _run_cases(
    engine: str,
    cases: tuple[Case, ...],
    execute: Callable[[str], object],
    expected: tuple[type[BaseException], ...],
) -> tuple[list[dict[str, Any]], list[str]]:
    entries: list[dict[str, Any]] = []
    succeeded: list[str] = []
    for case in cases:
        try:
            execute(case.sql)
        except expected as exc:
            entries.append(_entry(engine, case, str(exc), _raised(exc)))
        else:
            succeeded.append(f"{engine}: {case.sql}")
    return entries, succeeded


# ---------------------------------------------------------------------------------------------------- producers


def fakesnow_entries() -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``FAKESNOW_CASES`` through the real connector patched by fakesnow, in-process."""
    import duckdb
    import fakesnow
    import snowflake.connector
    import sqlglot.errors

    with fakesnow.patch():
        conn = snowflake.connector.connect(database="DB", schema="S")
        try:
            for sql in FAKESNOW_SETUP:
                conn.cursor().execute(sql)

            def execute(sql: str) -> object:
                return conn.cursor().execute(sql).fetchall()

            # Not only the connector's errors: some DuckDB and sqlglot exceptions reach the caller unwrapped.
            return _run_cases(
                "fakesnow",
                FAKESNOW_CASES,
                execute,
                (snowflake.connector.errors.Error, duckdb.Error, sqlglot.errors.SqlglotError),
            )
        finally:
            conn.close()


def duckdb_entries() -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``DUCKDB_CASES`` in plain DuckDB, then the memory, permission and file failures."""
    import duckdb

    con = duckdb.connect()
    try:
        for sql in DUCKDB_SETUP:
            con.execute(sql)
        entries, succeeded = _run_cases(
            "duckdb", DUCKDB_CASES, lambda sql: con.execute(sql).fetchall(), (duckdb.Error,)
        )
    finally:
        con.close()

    def attempt(case: Case, connect: Callable[[], Any]) -> None:
        try:
            con = connect()
            try:
                con.execute(case.sql).fetchall()
            finally:
                con.close()
        except duckdb.Error as exc:
            entries.append(_entry("duckdb", case, str(exc), _raised(exc)))
        else:
            succeeded.append(f"duckdb: {case.name}")

    attempt(
        Case("out_of_memory", DUCKDB_OOM_SQL, "resource"),
        lambda: duckdb.connect(config={"memory_limit": "32MB", "threads": 1, "temp_directory": ""}),
    )
    attempt(
        Case("external_access_disabled", DUCKDB_NO_FILES_SQL, "permission"),
        lambda: duckdb.connect(config={"enable_external_access": False}),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "readonly.duckdb")
        duckdb.connect(path).execute("CREATE TABLE T (A INT)").close()
        attempt(
            Case(
                "read_only_database",
                DUCKDB_READ_ONLY_SQL,
                "ambiguous",
                ("permission", "unknown"),
                "A write refused because the database is attached read-only: an access restriction, but one of "
                "configuration rather than a privilege or login.",
            ),
            lambda: duckdb.connect(path, read_only=True),
        )
    attempt(
        Case(
            "database_file_missing",
            "",
            "ambiguous",
            ("missing_relation", "unknown"),
            f"Opening {DUCKDB_MISSING_FILE} (a database file in a directory that does not exist): a missing "
            "database to a warehouse, a missing file to the OS; 'IO Error' alone names no SQL object.",
        ),
        lambda: duckdb.connect(DUCKDB_MISSING_FILE),
    )
    return entries, succeeded


def _fixed_port(first: int = FIRST_FIXED_PORT) -> socket.socket:
    """A listening socket on the first free port from ``first``, so texts that name the port are stable."""
    for port in range(first, first + 200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # earlier cases leave TIME_WAIT behind
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            sock.close()
            continue
        sock.listen(16)
        return sock
    raise RuntimeError(f"no free loopback port in {first}..{first + 199}")


def _read_request(client: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = client.recv(65536)
        if not chunk:
            return
        body += chunk


@contextlib.contextmanager
def _loopback_endpoint(behaviour: str) -> Iterator[int]:
    """Listen on loopback and misbehave: ``reset``, ``hang`` or answer ``HTTP <code> <reason>``."""
    server = _fixed_port()
    server.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(5)
            if behaviour == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            elif behaviour == "hang":
                held.append(client)
            else:
                with contextlib.suppress(OSError):
                    _read_request(client)
                    body = behaviour.split(" ", 1)[1].encode()
                    client.sendall(
                        f"HTTP/1.1 {behaviour}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                        f"Connection: close\r\n\r\n".encode()
                        + body
                    )
                client.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()
        for client in held:
            client.close()


NETWORK_CASES = (
    # (case, behaviour of the loopback port: None = nothing listens)
    (Case("connection_refused", "", "transient"), None),
    (Case("connection_reset", "", "transient"), "reset"),
    (Case("read_timeout", "", "transient"), "hang"),
    (Case("http_503", "", "transient"), "503 Service Unavailable"),
    (Case("http_401", "", "permission"), "401 Unauthorized"),
    (Case("http_403", "", "permission"), "403 Forbidden"),
)


def network_entries() -> tuple[list[dict[str, Any]], list[str]]:
    """Log in with the real connector to loopback ports that refuse, reset, hang or answer an HTTP error."""
    import snowflake.connector

    entries: list[dict[str, Any]] = []
    succeeded: list[str] = []
    for case, behaviour in NETWORK_CASES:
        with contextlib.ExitStack() as stack:
            if behaviour is None:
                closed = _fixed_port()
                port = closed.getsockname()[1]
                closed.close()  # bound, then released: nothing listens there now
            else:
                port = stack.enter_context(_loopback_endpoint(behaviour))
            what = f"port {port}: " + ("nothing listening" if behaviour is None else behaviour)
            try:
                snowflake.connector.connect(
                    account="x",
                    user="u",
                    password="p",  # noqa: S106 - a dummy login sent only to a loopback port
                    host=LOOPBACK,
                    port=port,
                    protocol="http",
                    login_timeout=3,
                    network_timeout=3,
                    socket_timeout=2,
                ).close()
            except snowflake.connector.errors.Error as exc:
                entries.append(
                    _entry(
                        "network",
                        case,
                        str(exc),
                        _raised(exc),
                        source=f"live: {SCRIPT} network (loopback {what})",
                    )
                )
            else:
                succeeded.append(f"network: {case.name}")
    return entries, succeeded


# --------------------------------------------------------------------------------------------------------- dbt

DBT_PROJECT = """\
name: triage_corpus
version: "1.0.0"
config-version: 2
profile: triage_corpus
flags:
  send_anonymous_usage_stats: false
models:
  triage_corpus:
    +materialized: table
"""

DBT_PROFILE = """\
triage_corpus:
  target: dev
  outputs:
    dev:
      type: snowflake
      account: fakesnow
      host: {host}
      port: {port}
      protocol: http
      user: selfheal
      password: embedded
      database: DB
      warehouse: COMPUTE_WH
      schema: S
      threads: 1
      connect_timeout: 3
      connect_retries: 0
"""

DBT_SETUP = (
    "CREATE SCHEMA IF NOT EXISTS DB.S",
    "CREATE TABLE DB.S.ORDERS (ORDER_ID INT, NOTE VARCHAR(5))",
    "INSERT INTO DB.S.ORDERS VALUES (1, 'abc')",
    # Bad data for `dbt test`: a duplicate id, a NULL name, a tier and a method outside the accepted values,
    # payments of an order and of customers that do not exist, a negative amount, a customer with no payment.
    "CREATE TABLE DB.S.CUSTOMERS (CUSTOMER_ID INT, NAME VARCHAR, TIER VARCHAR)",
    "INSERT INTO DB.S.CUSTOMERS VALUES (1, 'Ann', 'gold'), (1, 'Bob', 'silver'), (2, NULL, 'platinum')",
    "CREATE TABLE DB.S.PAYMENTS (PAYMENT_ID INT, ORDER_ID INT, CUSTOMER_ID INT, METHOD VARCHAR, "
    "AMOUNT NUMBER(10,2))",
    "INSERT INTO DB.S.PAYMENTS VALUES (10, 1, 1, 'card', 9.50), (10, 1, 3, 'cash', -2.00), "
    "(11, 7, 9, 'iou', 5.00), (12, NULL, 1, 'card', 1.00)",
)

# model name -> (SQL, expected class); "" = it builds (``payments`` is there for the data tests)
DBT_RUN_MODELS = {
    "bad_cast": ("select NOTE::int as n from DB.S.ORDERS", "type_mismatch"),
    "missing_column": ("select NOPE from DB.S.ORDERS", "missing_column"),
    "missing_table": ("select * from DB.S.NOPE_TABLE", "missing_relation"),
    "ok": ("select ORDER_ID from DB.S.ORDERS", ""),
    "payments": (
        "select payment_id, order_id, customer_id, method, amount from {{ source('raw', 'payments') }}",
        "",
    ),
}

# The data tests of the run project: every one returns rows from the bad data of ``DBT_SETUP``.
DBT_TEST_FILES = {
    "models/schema.yml": """\
version: 2
sources:
  - name: raw
    database: DB
    schema: S
    tables:
      - name: orders
      - name: customers
        columns:
          - name: customer_id
            data_tests:
              - unique
          - name: name
            data_tests:
              - not_null
          - name: tier
            data_tests:
              - accepted_values:
                  arguments:
                    values: [gold, silver]
                  config:
                    severity: warn
      - name: payments
        columns:
          - name: order_id
            data_tests:
              - relationships:
                  arguments:
                    to: source('raw', 'orders')
                    field: order_id
models:
  - name: payments
    columns:
      - name: payment_id
        data_tests:
          - unique:
              config:
                severity: warn
      - name: order_id
        data_tests:
          - not_null:
              config:
                severity: warn
          - unique:
              name: one_payment_per_order
      - name: customer_id
        data_tests:
          - relationships:
              arguments:
                to: source('raw', 'customers')
                field: customer_id
              config:
                severity: warn
      - name: method
        data_tests:
          - accepted_values:
              arguments:
                values: [card, cash]
      - name: amount
        data_tests:
          - is_positive
""",
    "tests/generic/is_positive.sql": """\
{% test is_positive(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} <= 0
{% endtest %}
""",
    "tests/assert_customers_have_payments.sql": """\
select c.customer_id
from {{ source('raw', 'customers') }} c
left join {{ ref('payments') }} p on p.customer_id = c.customer_id
where p.payment_id is null
""",
}
DBT_BUILTIN_TESTS = ("unique", "not_null", "accepted_values", "relationships")
DBT_RENAMED_NOTE = (
    "A unique test declared with name: one_payment_per_order, so neither its node name nor its file path says "
    "unique; the plain text alone reads like a singular test. The JSON entry of the same test carries "
    "test_name from the manifest."
)
# (case, the test's node name in dbt, the status it ends with); the case's label is what the test is, and is
# checked against the manifest's test_metadata. Each test gives ``live_dbt_<case>`` (JSON log lines, with
# resource_type, status and, for a built-in generic test, test_name) and ``live_dbt_<case>_plain`` (plain text).
DBT_TESTS = (
    (Case("test_unique_source", "", "test_unique"), "source_unique_raw_customers_customer_id", "fail"),
    (Case("test_unique_model_warn", "", "test_unique"), "unique_payments_payment_id", "warn"),
    (Case("test_unique_renamed", "", "test_unique"), "one_payment_per_order", "fail"),
    (Case("test_not_null_source", "", "test_not_null"), "source_not_null_raw_customers_name", "fail"),
    (Case("test_not_null_model_warn", "", "test_not_null"), "not_null_payments_order_id", "warn"),
    (
        Case("test_accepted_values_source_warn", "", "test_accepted_values"),
        "source_accepted_values_raw_customers_tier__gold__silver",
        "warn",
    ),
    (
        Case("test_accepted_values_model", "", "test_accepted_values"),
        "accepted_values_payments_method__card__cash",
        "fail",
    ),
    (
        Case("test_relationships_source", "", "test_relationships"),
        "source_relationships_raw_payments_order_id__order_id__source_raw_orders_",
        "fail",
    ),
    (
        Case("test_relationships_model_warn", "", "test_relationships"),
        "relationships_payments_customer_id__customer_id__source_raw_customers_",
        "warn",
    ),
    (Case("test_singular", "", "test_singular"), "assert_customers_have_payments", "fail"),
    (Case("test_custom_generic_is_positive", "", "test_singular"), "is_positive_payments_amount", "fail"),
)
# Plain-text entries whose text alone cannot tell the class: case name -> (candidates, note).
DBT_TESTS_PLAIN_AMBIGUOUS = {"test_unique_renamed": (("test_unique", "test_singular"), DBT_RENAMED_NOTE)}
# The JSON log lines about a failing test: its result, its failure or warning summary, its "Got N results".
DBT_TEST_LOG_CODES = frozenset({"Q007", "Z022", "Z021", "Z024", "Z046"})
DBT_BAD_REF_SQL = "select 1 as x from {{ ref('nope_model') }}"


def _dbt(project: Path, *args: str, json_log: bool = True) -> tuple[list[str], list[dict[str, Any]], str]:
    """
    Run dbt in ``project``: its log lines (verbatim), the results in run_results.json, how it ended.

    With ``json_log`` (``--log-format json``) the lines are the JSON ones; without, every line of the plain output.
    """
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", "DO_NOT_TRACK": "1"}
    dbt = Path(sys.executable).with_name("dbt")
    log_format = ("--log-format", "json") if json_log else ()
    proc = subprocess.run(
        [
            str(dbt),
            *args,
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            *log_format,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    lines = proc.stdout.splitlines()
    if json_log:
        lines = [line for line in lines if line.startswith("{")]
    results_file = project / "target" / "run_results.json"
    results = json.loads(results_file.read_text())["results"] if results_file.exists() else []
    return lines, results, f"dbt {' '.join(args + log_format)} (exit code {proc.returncode})"


def _node_lines(lines: list[str], unique_id: str, codes: frozenset[str] = frozenset()) -> list[str]:
    """The log lines about one node (only those with an event code in ``codes``, if given), no blank lines."""
    picked = []
    for line in lines:
        info = json.loads(line)
        if info["info"]["name"] == "Formatting" or (codes and info["info"]["code"] not in codes):
            continue
        if info["data"].get("node_info", {}).get("unique_id") == unique_id:
            picked.append(line)
    return picked


def _plain_test_lines(lines: list[str], name: str) -> list[str]:
    """The plain-text lines about one failing test: its result, its summary and the ``Got N results`` after it."""
    result = re.compile(rf" of \d+ (?:FAIL|WARN) \d+ {re.escape(name)} ")
    summary = re.compile(rf"(?:Failure|Warning) in test {re.escape(name)} \(")
    picked = []
    for i, line in enumerate(lines):
        if result.search(line):
            picked.append(line)
        elif summary.search(line):
            picked.append(line)
            if i + 1 < len(lines) and re.search(r"Got \d+ results?\b", lines[i + 1]):
                picked.append(lines[i + 1])
    return picked


def _tail_to_error(lines: list[str], before: int = 2) -> list[str]:
    """The last error line and the ``before`` non-blank lines preceding it."""
    kept = [line for line in lines if json.loads(line)["info"]["name"] != "Formatting"]
    last = max(i for i, line in enumerate(kept) if json.loads(line)["info"]["level"] == "error")
    return kept[max(0, last - before) : last + 1]


def _write_project(
    root: Path, models: dict[str, str], port: int, files: dict[str, str] | None = None
) -> Path:
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_text(DBT_PROJECT)
    (root / "profiles.yml").write_text(DBT_PROFILE.format(host=LOOPBACK, port=port))
    for name, sql in models.items():
        (root / "models" / f"{name}.sql").write_text(sql + "\n")
    for relative, text in (files or {}).items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def _test_entries(
    project: Path,
    json_run: tuple[list[str], list[dict[str, Any]], str],
    plain_run: tuple[list[str], list[dict[str, Any]], str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Two entries per test of ``DBT_TESTS``: its JSON log lines with metadata, and its plain-text lines bare."""
    lines, results, ended = json_run
    plain_lines, _, plain_ended = plain_run
    nodes = json.loads((project / "target" / "manifest.json").read_text())["nodes"]
    tests = {node["name"]: node for node in nodes.values() if node["resource_type"] == "test"}
    status = {result["unique_id"]: result["status"] for result in results}
    entries: list[dict[str, Any]] = []
    succeeded: list[str] = []
    for case, name, expected in DBT_TESTS:
        node = tests[name]
        kind = node.get("test_metadata", {}).get("name")  # absent for a singular test
        builtin = kind in DBT_BUILTIN_TESTS and not node["test_metadata"].get("namespace")
        assert case.label == (f"test_{kind}" if builtin else "test_singular"), (case, kind)
        if status.get(node["unique_id"]) != expected:
            succeeded.append(f"dbt test: {name} ({status.get(node['unique_id'])}, not {expected})")
            continue
        extra = {"resource_type": "test", "status": expected}
        if builtin:
            extra["test_name"] = kind
        source = f"live: {SCRIPT} dbt test (stand-in of dev/warehouse.py)"
        text = "\n".join(_node_lines(lines, node["unique_id"], DBT_TEST_LOG_CODES))
        entries.append(_entry("dbt", case, text, ended, source=source, **extra))
        candidates, note = DBT_TESTS_PLAIN_AMBIGUOUS.get(case.name, ((), ""))
        plain = Case(f"{case.name}_plain", "", "ambiguous" if candidates else case.label, candidates, note)
        text = "\n".join(_plain_test_lines(plain_lines, name))
        assert text, f"no plain-text lines about {name}"
        entries.append(_entry("dbt", plain, text, plain_ended, source=f"{source}, plain text"))
    return entries, succeeded


def dbt_entries() -> tuple[list[dict[str, Any]], list[str]]:
    """
    Real dbt invocations: a run and two tests (JSON, plain) against the stand-in, a parse with a bad ref, a run on
    a closed port.
    """
    from dev import warehouse

    entries: list[dict[str, Any]] = []
    succeeded: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with warehouse.running(root / "warehouse") as wh:
            conn = wh.connect(database="DB")
            try:
                for sql in DBT_SETUP:
                    conn.cursor().execute(sql)
            finally:
                conn.close()
            project = _write_project(
                root / "run",
                {name: sql for name, (sql, _) in DBT_RUN_MODELS.items()},
                wh.port,
                DBT_TEST_FILES,
            )
            lines, results, ended = _dbt(project, "run")
            made, missed = _test_entries(
                project, _dbt(project, "test"), _dbt(project, "test", json_log=False)
            )
            entries += made
            succeeded += missed
        status = {result["unique_id"]: result["status"] for result in results}
        for name, (sql, label) in sorted(DBT_RUN_MODELS.items()):
            if not label:
                continue
            unique_id = f"model.triage_corpus.{name}"
            if status.get(unique_id) != "error":
                succeeded.append(f"dbt run: {name} ({status.get(unique_id)})")
                continue
            text = "\n".join(_node_lines(lines, unique_id))
            entries.append(
                _entry(
                    "dbt",
                    Case(f"run_{name}", sql, label),
                    text,
                    ended,
                    source=f"live: {SCRIPT} dbt run (stand-in of dev/warehouse.py)",
                    resource_type="model",
                    status="error",
                )
            )

        project = _write_project(root / "parse", {"bad_ref": DBT_BAD_REF_SQL}, 1)
        lines, _, ended = _dbt(project, "parse")
        entries.append(
            _entry(
                "dbt",
                Case(
                    "parse_ref_not_found",
                    DBT_BAD_REF_SQL,
                    "dependency_error",
                    (),
                    "dbt calls it a Compilation Error; what it reports is a ref() to a node missing from the "
                    "graph, which is the dependency_error class.",
                ),
                "\n".join(_tail_to_error(lines)),
                ended,
                source=f"live: {SCRIPT} dbt parse",
            )
        )

        closed = _fixed_port()
        port = closed.getsockname()[1]
        closed.close()
        project = _write_project(root / "offline", {"ok": DBT_RUN_MODELS["ok"][0]}, port)
        lines, results, ended = _dbt(project, "run")
        extra = {}
        if results:
            extra = {"resource_type": "model", "status": results[0]["status"]}
        entries.append(
            _entry(
                "dbt",
                Case("run_connection_refused", DBT_RUN_MODELS["ok"][0], "transient"),
                "\n".join(_tail_to_error(lines)),
                ended,
                source=f"live: {SCRIPT} dbt run (loopback port {port}: nothing listening)",
                **extra,
            )
        )
    return entries, succeeded


# -------------------------------------------------------------------------------------------------------- YAML


def _is_block_safe(text: str) -> bool:
    """Whether ``text`` round-trips through a ``|-`` literal block unchanged."""
    if not text or text != text.strip("\n") or text[0] in " \t" or "\r" in text:
        return False
    return all(ch in "\n\t" or (ch >= " " and ch not in "\x7f\x85\u2028\u2029\ufeff") for ch in text)


def _scalar(value: str) -> str:
    if PLAIN.fullmatch(value) and value not in YAML11_WORDS:
        return value
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def render(entries: list[dict[str, Any]]) -> str:
    """The YAML document: a header with the toolchain, then ``entries:``."""
    versions = ", ".join(f"{name} {version(name)}" for name in TOOLCHAIN)
    out = [
        "# Live failure texts for the triage classifier, produced offline (in-process and loopback only) by",
        f"# {SCRIPT}. Regenerate with:",
        f"#   {REGENERATE}",
        f"# Toolchain: Python {platform.python_version()}, {versions}.",
        "# Each text is the exact str(exc) of what was raised (dbt: the run's JSON log lines for the failing node,",
        "# or for a test also its plain-text lines; their ts, pid, invocation_id and time of day change per run).",
        "# '# raised:' names the exception class (dbt: the command). Labels are written per case in the script from",
        "# what the message says (dbt tests: from what the test is), independently of the classifier.",
    ]
    out.append("entries:")
    for entry in entries:
        out.append(f"  # raised: {entry['_raised']}")
        first = True
        for key, value in entry.items():
            if key == "_raised":
                continue
            lead = "  - " if first else "    "
            first = False
            if isinstance(value, list):
                out.append(f"{lead}{key}: [{', '.join(_scalar(v) for v in value)}]")
            elif key == "text" and _is_block_safe(value):
                out.append(f"{lead}{key}: |-")
                out.extend(f"      {line}" if line else "" for line in value.split("\n"))
            else:
                out.append(f"{lead}{key}: {_scalar(value)}")
    return "\n".join(out) + "\n"


def main() -> int:
    import yaml

    warnings.filterwarnings("ignore", category=UserWarning, module="fakesnow")
    started = time.monotonic()
    entries: list[dict[str, Any]] = []
    succeeded: list[str] = []
    for produce in (fakesnow_entries, duckdb_entries, network_entries, dbt_entries):
        made, missed = produce()
        entries += made
        succeeded += missed
    entries.sort(key=lambda entry: entry["id"])
    ids = [entry["id"] for entry in entries]
    assert len(ids) == len(set(ids)), "duplicate ids"
    if succeeded:
        print(
            "these cases no longer fail; relabel or drop them:\n  " + "\n  ".join(succeeded), file=sys.stderr
        )
        return 1
    document = render(entries)
    loaded = yaml.safe_load(document)["entries"]
    assert loaded == [{k: v for k, v in e.items() if k != "_raised"} for e in entries], (
        "YAML does not round-trip"
    )
    sys.stdout.write(document)
    print(f"{len(entries)} entries in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
