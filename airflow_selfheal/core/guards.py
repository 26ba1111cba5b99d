"""The two guards every write and every probe passes: project-relative paths only, and read-only SQL only.

Both refuse with a message that names what was refused and why; neither touches the file system or a warehouse.
A third, :func:`assert_no_jinja`, refuses text from outside the project (a drift event, an error message, a
failing row) that would become Jinja once written into a model, a YAML file or a test.

.. code-block:: python

    check_relative_path("models/staging/stg_orders.sql")  # returned unchanged
    assert_no_jinja("CONTACT_EMAIL", what="the new column name")  # passes; "{{ run_query(...) }}" raises
    read_only_sql("select count(*) from CLONE.RAW.ORDERS", database="CLONE")  # the SQL to send, with LIMIT 20
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlglot import exp

DIALECT = "snowflake"
_FORBIDDEN_FUNCTION_PREFIX = "SYSTEM$"


class UnsafePathError(ValueError):
    """A path is not a plain project-relative POSIX path; nothing was read or written."""


def check_relative_path(path: str) -> str:
    """
    Check a project-relative POSIX path: not empty, not absolute, no ``.``/``..``/empty parts, no backslash.

    :param path: e.g. ``models/staging/stg_orders.sql``.
    :return: the path, unchanged.
    :raises UnsafePathError: naming the path and what is wrong with it.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"path {path!r} must be a non-empty string")
    if "\x00" in path or "\\" in path:
        raise UnsafePathError(f"path {path!r} must be a POSIX path without backslashes or NUL characters")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafePathError(
            f"path {path!r} is absolute; only paths relative to the dbt project are allowed"
        )
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise UnsafePathError(f"path {path!r} must not contain '..', '.' or empty parts")
    return path


#: The Jinja delimiters, as dbt looks for them before rendering (its ``_HAS_RENDER_CHARS_PAT``): openers of an
#: expression, a statement and a comment, and their closers. Whitespace control (``{%-``, ``{{-``, ``+%}``) only
#: adds a character inside them, and dbt leaves Jinja's line statements and line comments off (its environment
#: sets no ``line_statement_prefix``), so these six are every way text becomes Jinja in a dbt file.
JINJA_DELIMITERS = ("{{", "{%", "{#", "}}", "%}", "#}")
# A lookahead, so overlapping delimiters all count: ``{{{`` holds two ``{{``, ``{%}`` both ``{%`` and ``%}``.
_JINJA_DELIMITER = re.compile(r"(?=(\{[{%#]|[}%#]\}))")
_SHOWN = 80


class UnsafeTextError(ValueError):
    """Text from outside the project would be Jinja once written into a project file; it was not written."""


def jinja_delimiters(text: str) -> Counter[str]:
    """
    Count the Jinja delimiters in a text, overlapping ones included.

    :param text: any text, e.g. a file's content.
    :return: delimiter (one of :data:`JINJA_DELIMITERS`) to its number of occurrences; empty when there are none.
    """
    return Counter(match.group(1) for match in _JINJA_DELIMITER.finditer(text))


def assert_no_jinja(value: object, *, what: str) -> str:
    """
    Refuse text that dbt would render as Jinja, before a rule writes it into a model, a YAML file or a test.

    dbt renders Jinja everywhere in a file, comments, quoted identifiers and string literals included, so a column
    name or a value taken from the warehouse must hold no delimiter at all: written, it would run (``run_query``
    and all) in validation, and again in production once promoted.

    :param value: e.g. a column name from a drift event or a value from a failing row; its ``str()`` is checked.
    :param what: what the value is, for the message, e.g. ``the new column name of the drift event``.
    :return: the value as text, unchanged.
    :raises UnsafeTextError: naming ``what``, the value (shortened) and the first delimiter found.
    """
    text = str(value)
    found = _JINJA_DELIMITER.search(text)
    if found is not None:
        shown = text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
        raise UnsafeTextError(
            f"refusing {what} {shown!r}: it holds the Jinja delimiter {found.group(1)!r}, which dbt would "
            "render (and run) in the file"
        )
    return text


class ReadOnlyViolation(ValueError):
    """A probe statement is not one bounded read of the clone; it was not sent."""


#: Rows a probe statement returns at most: the ``LIMIT`` written into the SQL when the caller gives no other.
PROBE_ROW_LIMIT = 20

# The names are the ones sqlglot writes back, which is the text sent (``ZEROIFNULL`` comes back as ``IFF``).
_BUILTINS_BY_KIND = {
    "predicate": "EXISTS ANY ALL",
    "aggregate": """
        ANY_VALUE APPROX_COUNT_DISTINCT APPROX_PERCENTILE APPROX_TOP_K ARRAY_AGG ARRAY_UNION_AGG AVG BITAND_AGG
        BITOR_AGG BITXOR_AGG BOOLAND_AGG BOOLOR_AGG BOOLXOR_AGG CORR COUNT COUNT_IF COVAR_POP COVAR_SAMP HASH_AGG
        HLL KURTOSIS LISTAGG MAX MAX_BY MEDIAN MIN MIN_BY MODE OBJECT_AGG PERCENTILE_CONT PERCENTILE_DISC
        REGR_INTERCEPT REGR_R2 REGR_SLOPE SKEW STDDEV STDDEV_POP STDDEV_SAMP SUM VARIANCE VARIANCE_POP
        VARIANCE_SAMP VAR_POP VAR_SAMP
    """,
    "window": """
        CONDITIONAL_CHANGE_EVENT CONDITIONAL_TRUE_EVENT CUME_DIST DENSE_RANK FIRST_VALUE LAG LAST_VALUE LEAD
        NTH_VALUE NTILE PERCENT_RANK RANK RATIO_TO_REPORT ROW_NUMBER
    """,
    "conditional": """
        COALESCE DECODE EQUAL_NULL GREATEST GREATEST_IGNORE_NULLS IFF IFNULL LEAST LEAST_IGNORE_NULLS NULLIF
        NULLIFZERO NVL NVL2 REGR_VALX REGR_VALY ZEROIFNULL
    """,
    "conversion": """
        CAST TO_ARRAY TO_BINARY TO_BOOLEAN TO_CHAR TO_DATE TO_DECIMAL TO_DOUBLE TO_JSON TO_NUMBER TO_NUMERIC
        TO_OBJECT TO_TIME TO_TIMESTAMP TO_TIMESTAMP_LTZ TO_TIMESTAMP_NTZ TO_TIMESTAMP_TZ TO_VARCHAR TO_VARIANT
        TRY_CAST TRY_TO_BOOLEAN TRY_TO_DATE TRY_TO_DECIMAL TRY_TO_DOUBLE TRY_TO_NUMBER TRY_TO_NUMERIC TRY_TO_TIME
        TRY_TO_TIMESTAMP TRY_TO_TIMESTAMP_LTZ TRY_TO_TIMESTAMP_NTZ TRY_TO_TIMESTAMP_TZ
    """,
    "string": """
        ASCII BASE64_DECODE_STRING BASE64_ENCODE BIT_LENGTH CHARINDEX CHR COLLATE COLLATION CONCAT CONCAT_WS
        CONTAINS EDITDISTANCE ENDSWITH HASH HEX_ENCODE ILIKE INITCAP JAROWINKLER_SIMILARITY LEFT LEN LENGTH LIKE
        LOWER LPAD LTRIM MD5 MD5_HEX OCTET_LENGTH POSITION REGEXP_COUNT REGEXP_INSTR REGEXP_LIKE REGEXP_REPLACE
        REGEXP_SUBSTR REPEAT REPLACE REVERSE RIGHT RLIKE RPAD RTRIM SHA1 SHA1_HEX SHA2 SHA2_HEX SOUNDEX SPACE
        SPLIT SPLIT_PART STARTSWITH STRTOK SUBSTR SUBSTRING TRANSLATE TRIM UNICODE UPPER
    """,
    "numeric": """
        ABS ACOS ASIN ATAN ATAN2 CBRT CEIL CEILING COS DIV0 DIV0NULL EXP FLOOR LN LOG MOD PI POW POWER RANDOM
        ROUND SIGN SIN SQRT SQUARE TAN TRUNC TRUNCATE UNIFORM UUID_STRING WIDTH_BUCKET
    """,
    "date and time": """
        ADD_MONTHS CONVERT_TIMEZONE DATE DATEADD DATEDIFF DATE_FROM_PARTS DATE_PART DATE_TRUNC DAY DAYNAME
        DAYOFMONTH DAYOFWEEK DAYOFWEEKISO DAYOFYEAR EXTRACT GETDATE HOUR LAST_DAY LOCALTIME LOCALTIMESTAMP MINUTE
        MONTH MONTHNAME MONTHS_BETWEEN NEXT_DAY PREVIOUS_DAY QUARTER SECOND SYSDATE TIME TIMEADD TIMEDIFF
        TIMESTAMPADD TIMESTAMPDIFF TIMESTAMP_FROM_PARTS TIME_FROM_PARTS TIME_SLICE WEEK WEEKISO WEEKOFYEAR YEAR
        YEAROFWEEK YEAROFWEEKISO
    """,
    "semi-structured": """
        ARRAYS_OVERLAP ARRAY_APPEND ARRAY_CAT ARRAY_COMPACT ARRAY_CONSTRUCT ARRAY_CONSTRUCT_COMPACT ARRAY_CONTAINS
        ARRAY_DISTINCT ARRAY_INSERT ARRAY_INTERSECTION ARRAY_POSITION ARRAY_SIZE ARRAY_SLICE ARRAY_TO_STRING
        AS_ARRAY AS_CHAR AS_NUMBER AS_OBJECT AS_VARCHAR CHECK_JSON GET GET_PATH IS_ARRAY IS_BOOLEAN IS_DATE
        IS_DECIMAL IS_INTEGER IS_NULL_VALUE IS_OBJECT IS_VARCHAR JSON_EXTRACT_PATH_TEXT OBJECT_CONSTRUCT
        OBJECT_CONSTRUCT_KEEP_NULL OBJECT_DELETE OBJECT_INSERT OBJECT_KEYS OBJECT_PICK PARSE_JSON STRIP_NULL_VALUE
        TRY_PARSE_JSON TYPEOF
    """,
}
#: Snowflake built-ins a probe may call: predicates, scalar, aggregate and window functions that read nothing but
#: their arguments and the session's context (every ``CURRENT_*`` is allowed too). Anything else, a UDF, an
#: external or Cortex function, ``RESULT_SCAN``, ``GET_DDL``, is refused unless the caller allows it by name.
BUILTIN_FUNCTIONS = frozenset(name for names in _BUILTINS_BY_KIND.values() for name in names.split())

# Why the usual suspects are refused, for the message; the key is a name or a prefix of one.
_REFUSED_BECAUSE = {
    "RESULT_SCAN": "it reads the result of an earlier query, other users' included",
    "QUERY_HISTORY": "it reads the account's query history, other users' statements included",
    "LOGIN_HISTORY": "it reads the account's login history",
    "GET_DDL": "it returns the definition of any object the role can see, outside the clone too",
    "LAST_QUERY_ID": "it only serves to read an earlier query's result",
    "AI_": "Cortex AI functions send the data to a language model and are billed per token",
}
# The account's usage views: who ran what, when, for every user; never a probe's business.
_ACCOUNT_USAGE_SCHEMAS = frozenset(
    {"ACCOUNT_USAGE", "ORGANIZATION_USAGE", "READER_ACCOUNT_USAGE", "DATA_SHARING_USAGE"}
)
_ACCOUNT_DATABASE = "SNOWFLAKE"
_CALL_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_$]*)\s*\(")


def _refused_node_types() -> tuple[type[exp.Expr], ...]:
    """Statements, not queries: anywhere in the tree (a CTE that deletes, ``SELECT ... INTO``) they refuse it."""
    from sqlglot import exp

    return (
        exp.DML,  # INSERT, UPDATE, DELETE, MERGE, COPY
        exp.DDL,  # CREATE
        exp.Drop,
        exp.Undrop,
        exp.Alter,
        exp.TruncateTable,
        exp.Command,  # what sqlglot does not parse: CALL, EXECUTE IMMEDIATE, GET, REMOVE, EXPLAIN
        exp.Into,
        exp.Use,
        exp.Set,
        exp.Show,
        exp.Describe,
        exp.ListStage,
        exp.Put,
        exp.Get,
        exp.Grant,
        exp.Revoke,
        exp.Transaction,
        exp.Commit,
        exp.Rollback,
        exp.Lock,
        exp.Kill,
        exp.Pragma,
        exp.Analyze,
        exp.Refresh,
        exp.Cache,
        exp.Uncache,
        exp.LoadData,
        exp.Comment,
        exp.Declare,
        exp.Execute,
    )


def _stored(identifier: exp.Identifier) -> str:
    """The stored form of an identifier, as Snowflake resolves it: unquoted folds to upper case."""
    return str(identifier.this) if identifier.quoted else str(identifier.this).upper()


def _function_names(names: Iterable[str]) -> frozenset[tuple[str, ...]]:
    from airflow_selfheal.core.clone_sql.names import split_qualified

    allowed = set()
    for name in names:
        try:
            allowed.add(split_qualified(name))
        except ValueError as exc:
            raise ValueError(f"allowed function {name!r} is not a function name: {exc}") from None
    return frozenset(allowed)


def read_only_sql(
    sql: str,
    *,
    database: str,
    limit: int = PROBE_ROW_LIMIT,
    allowed_functions: Iterable[str] = (),
) -> str:
    """
    Check that ``sql`` is one bounded read of ``database`` and return the SQL to send, with its ``LIMIT``.

    Allowed: one ``SELECT`` or ``WITH`` query, or a ``UNION``/``INTERSECT``/``EXCEPT`` of them, reading tables
    and views named ``<database>.SCHEMA.NAME`` (``<database>.INFORMATION_SCHEMA`` included) or CTEs in scope, and
    ``FLATTEN`` (``LATERAL FLATTEN(...)`` or ``TABLE(FLATTEN(...))``): it only unnests a value of a row already
    read. Everything else is refused, and says what and why:

    * another statement anywhere in the tree: DML, DDL, ``SELECT ... INTO``, ``SHOW``, ``DESCRIBE``, ``LIST``,
      ``PUT``/``GET``, ``CALL``, ``EXECUTE IMMEDIATE``, ``USE``, ``SET``, ``ALTER SESSION``, ``GRANT``;
    * any other table function (``TABLE(RESULT_SCAN(...))``, ``TABLE(INFORMATION_SCHEMA.QUERY_HISTORY())``,
      ``GENERATOR``, UDTFs), stages (``@stage``) and ``IDENTIFIER(...)``, whose target is only known at run time;
    * a reference to another database, ``SNOWFLAKE.ACCOUNT_USAGE`` always, or a table name without its database:
      it would resolve in the session's current database, which need not be the clone;
    * a call to a function outside :data:`BUILTIN_FUNCTIONS` and ``allowed_functions``: UDFs (qualified or
      quoted names), external and Cortex functions, ``RESULT_SCAN``, ``GET_DDL``; ``SYSTEM$`` functions are refused
      even when allowed, as some have side effects; ``<sequence>.NEXTVAL`` too.

    The returned SQL is sqlglot's text of the tree that was checked, comments dropped, so what runs is what was
    read. Its outermost ``LIMIT`` is at most ``limit``: added when absent, lowered when larger or not a plain
    number (``LIMIT ALL``, ``LIMIT NULL``); a ``LIMIT`` inside a subquery is the query's own business.

    .. code-block:: python

        read_only_sql("select * from CLONE.RAW.ORDERS", database="CLONE")
        # 'SELECT * FROM CLONE.RAW.ORDERS LIMIT 20'
        read_only_sql("select * from table(result_scan(last_query_id()))", database="CLONE")  # raises

    :param sql: the statement text.
    :param database: the one database the statement may read (the clone), as written in SQL.
    :param limit: most rows returned (at least 1); :data:`PROBE_ROW_LIMIT` unless a metadata read needs more.
    :param allowed_functions: more functions the statement may call, as written in SQL (``MY_DB.UTIL.MASK``,
        ``"myUdf"``), e.g. the rules file's ``allowed_sql_functions``.
    :return: the SQL to send.
    :raises ReadOnlyViolation: naming what was refused and why.
    :raises ValueError: on a bad ``database``, ``limit`` or ``allowed_functions`` entry.
    """
    from airflow_selfheal.core.clone_sql.names import split_qualified

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    parts = split_qualified(database)
    if len(parts) != 1 or parts[0] == _ACCOUNT_DATABASE:
        raise ValueError(f"database must name one database other than {_ACCOUNT_DATABASE}, got {database!r}")
    checker = _ReadOnlyChecker(parts[0], _function_names(allowed_functions))
    statement = _one_query(sql)
    checker.check(statement)
    # Check again what will be sent: sqlglot's text, parsed back, must pass too.
    sent = _one_query(_text(statement))
    checker.check(sent)
    return _text(_bounded(sent, limit))


def _text(statement: exp.Expr) -> str:
    # Function names as written: sqlglot would otherwise upper-case a quoted UDF name ("myUdf" to "MYUDF").
    return str(statement.sql(dialect=DIALECT, comments=False, normalize_functions=False))


def _one_query(sql: str) -> exp.Query:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        parsed = sqlglot.parse(sql, read=DIALECT)
    except SqlglotError as exc:
        raise ReadOnlyViolation(
            f"refusing a statement that does not parse: {str(exc).splitlines()[0]}"
        ) from None
    statements = [statement for statement in parsed if statement is not None]
    # a trailing "; -- comment" is an empty statement carrying the comment
    statements = [statement for statement in statements if not isinstance(statement, exp.Semicolon)]
    if len(statements) != 1:
        raise ReadOnlyViolation(f"refusing {len(statements)} statements; a probe is exactly one statement")
    statement = statements[0]
    while isinstance(statement, exp.Subquery) and _set_args(statement) <= {"this"}:
        statement = statement.this
    if isinstance(statement, exp.Subquery):
        raise ReadOnlyViolation(
            "refusing a parenthesised query with a clause outside its parentheses; write it without them"
        )
    if not isinstance(statement, exp.Select | exp.SetOperation):
        kind = type(statement).__name__.upper()
        raise ReadOnlyViolation(
            f"refusing {'an' if kind[0] in 'AEIOU' else 'a'} {kind} statement; only SELECT and WITH queries "
            "(and their UNION, INTERSECT and EXCEPT) are allowed"
        )
    return statement


def _bounded(query: exp.Query, limit: int) -> exp.Query:
    """The query with an outermost ``LIMIT`` of at most ``limit``."""
    from sqlglot import exp

    current = query.args.get("limit")
    count = None
    if isinstance(current, exp.Limit) and _set_args(current) <= {"expression"}:
        count = current.expression
    elif isinstance(current, exp.Fetch):
        options = current.args.get("limit_options")
        if options is None or not (options.args.get("percent") or options.args.get("with_ties")):
            count = current.args.get("count")
    if isinstance(count, exp.Literal) and count.is_int and 0 <= int(count.this) <= limit:
        return query
    query.set("limit", exp.Limit(expression=exp.Literal.number(limit)))
    return query


def _set_args(node: exp.Expr) -> set[str]:
    return {key for key, value in node.args.items() if value is not None and value != []}


class _ReadOnlyChecker:
    """The checks of :func:`read_only_sql` on one parsed statement, in order: statements, sources, calls."""

    def __init__(self, database: str, allowed_functions: frozenset[tuple[str, ...]]) -> None:
        self.database = database
        self.allowed_functions = allowed_functions

    def check(self, statement: exp.Query) -> None:
        from sqlglot import exp

        refused = _refused_node_types()
        nodes = list(statement.walk())
        for node in nodes:
            if isinstance(node, refused):
                raise ReadOnlyViolation(
                    f"refusing a statement that contains {type(node).__name__.upper()}: a probe only reads"
                )
        for node in nodes:
            if isinstance(node, exp.UDTF):
                self._check_table_function(node)
            elif isinstance(node, exp.Table):
                self._check_table(node)
        for node in nodes:
            if isinstance(node, exp.Func):
                self._check_call(node)
            elif isinstance(node, exp.Column) and node.name.upper() == "NEXTVAL":
                raise ReadOnlyViolation(f"refusing {node.sql(dialect=DIALECT)}: it advances a sequence")

    def _check_table_function(self, node: exp.UDTF) -> None:
        from sqlglot import exp

        inner = node.this
        if isinstance(node, exp.Values):
            return
        if isinstance(node, exp.Lateral | exp.TableFromRows) and type(inner) is exp.Explode:
            return
        if isinstance(node, exp.Lateral) and isinstance(inner, exp.Subquery):
            return
        if type(node) is exp.Explode and isinstance(node.parent, exp.Lateral | exp.TableFromRows):
            return
        called = inner if isinstance(node, exp.Lateral | exp.TableFromRows) else node
        name = _shown_call(called) if isinstance(called, exp.Expr) else type(node).__name__.upper()
        reason = _reason(name)
        raise ReadOnlyViolation(
            f"refusing the table function {name}: "
            + (reason or "a table function can read anything its owner can; only FLATTEN is allowed")
        )

    def _check_table(self, table: exp.Table) -> None:
        from sqlglot import exp

        shown = table.sql(dialect=DIALECT)
        name = table.this
        if isinstance(name, exp.DynamicIdentifier):
            raise ReadOnlyViolation(
                f"refusing {shown}: IDENTIFIER(...) names its object at run time, so it cannot be checked"
            )
        if isinstance(name, exp.Var) and str(name.this).startswith("@"):
            raise ReadOnlyViolation(f"refusing {shown}: a stage holds files, not tables of the clone")
        if isinstance(name, exp.Func):
            raise ReadOnlyViolation(
                f"refusing the table function {_shown_call(name)}: a table function can read anything its owner "
                "can; only FLATTEN is allowed"
            )
        parts = [table.args.get(key) for key in ("catalog", "db", "this")]
        if not all(part is None or isinstance(part, exp.Identifier) for part in parts):
            raise ReadOnlyViolation(f"refusing FROM {shown}: not the name of a table or view")
        catalog, schema, _ = (None if part is None else _stored(part) for part in parts)
        if catalog is None and schema is None and _stored(name) in _visible_ctes(table):
            return
        if catalog == _ACCOUNT_DATABASE or schema in _ACCOUNT_USAGE_SCHEMAS:
            raise ReadOnlyViolation(
                f"refusing {shown}: the SNOWFLAKE database's usage views show every user's queries and objects"
            )
        if catalog is None:
            raise ReadOnlyViolation(
                f"refusing {shown}: a name without its database resolves in the session's current database, "
                f"which need not be the clone; write {self.database}.SCHEMA.NAME"
            )
        if catalog != self.database:
            raise ReadOnlyViolation(
                f"refusing {shown}: it is in the database {catalog}, and a probe reads {self.database} only"
            )

    def _check_call(self, node: exp.Func) -> None:
        from sqlglot import exp

        if type(node) is exp.Explode and isinstance(node.parent, exp.Lateral | exp.TableFromRows):
            return
        called = _called(node)
        if called is None:
            return  # syntax, not a call by name: CASE, AND, ||
        parts, quoted = called
        shown = ".".join(parts)
        if parts[-1].upper().startswith(_FORBIDDEN_FUNCTION_PREFIX):
            raise ReadOnlyViolation(
                f"refusing a call to {shown}: SYSTEM$ functions may have side effects, allowed or not"
            )
        if parts in self.allowed_functions:
            return
        if len(parts) > 1:
            reason = (
                "Cortex functions send the data to a language model and are billed per token"
                if parts[:2] == (_ACCOUNT_DATABASE, "CORTEX")
                else "a qualified name is a user-defined or external function"
            )
            raise ReadOnlyViolation(f"refusing a call to {shown}: {reason}; allow it by name if it is safe")
        if quoted:
            raise ReadOnlyViolation(
                f'refusing a call to "{shown}": a quoted name is a user-defined function; allow it by name if '
                "it is safe"
            )
        if shown in BUILTIN_FUNCTIONS or shown.startswith("CURRENT_"):
            return
        raise ReadOnlyViolation(
            f"refusing a call to {shown}: "
            + (
                _reason(shown)
                or "not a built-in function of the allow-list (UDFs, external and Cortex functions)"
            )
            + "; allow it by name if it is safe"
        )


def _reason(name: str) -> str | None:
    last = name.rsplit(".", 1)[-1].upper()
    return next((why for key, why in _REFUSED_BECAUSE.items() if last.startswith(key)), None)


def _called(node: exp.Func) -> tuple[tuple[str, ...], bool] | None:
    """
    The name Snowflake resolves a call by, as stored-form parts, and whether it was quoted; None for syntax.

    A typed function is named as sqlglot writes it back (that text is what is sent); a qualified one
    (``DB.SCHEMA.FN(...)``) carries its qualifiers.
    """
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        name = node.this
        quoted = isinstance(name, exp.Identifier) and bool(name.quoted)
        last = _stored(name) if isinstance(name, exp.Identifier) else str(name).upper()
    else:
        match = _CALL_NAME.match(_text(node))
        if match is None:
            return None
        quoted, last = False, match.group(1).upper()
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifiers = _dotted(parent.this)
        if qualifiers is None:
            raise ReadOnlyViolation(f"refusing a call to {parent.sql(dialect=DIALECT)}: not a function name")
        return (*qualifiers, last), quoted
    return (last,), quoted


def _dotted(node: exp.Expr) -> tuple[str, ...] | None:
    from sqlglot import exp

    if isinstance(node, exp.Identifier):
        return (_stored(node),)
    if isinstance(node, exp.Column):
        parts = [part for part in node.parts if isinstance(part, exp.Identifier)]
        return tuple(_stored(part) for part in parts) if len(parts) == len(node.parts) else None
    if isinstance(node, exp.Dot):
        left, right = _dotted(node.this), _dotted(node.expression)
        return None if left is None or right is None else (*left, *right)
    return None


def _shown_call(node: exp.Expr) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
        called = _called(node.expression)
    elif isinstance(node, exp.Anonymous):
        called = _called(node)
    elif isinstance(node, exp.Func):
        return str(node.sql_name())
    else:
        called = None
    return ".".join(called[0]) if called else str(node.sql(dialect=DIALECT))


def _visible_ctes(table: exp.Table) -> set[str]:
    """
    CTE names in scope where ``table`` is: all of an enclosing ``WITH`` from its body, earlier ones from a CTE.

    Inside a CTE, the CTEs before it and itself (recursion) are in scope; any other name resolves against the
    session's current database, so it is checked as a table.
    """
    from sqlglot import exp

    visible: set[str] = set()
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With) and isinstance(child, exp.CTE):
            index = next(position for position, cte in enumerate(node.expressions) if cte is child)
            visible.update(_stored(cte.args["alias"].this) for cte in node.expressions[: index + 1])
        elif isinstance(node, exp.Query) and not isinstance(child, exp.With):
            with_ = node.args.get("with_")
            if with_ is not None:
                visible.update(_stored(cte.args["alias"].this) for cte in with_.expressions)
        child, node = node, node.parent
    return visible
