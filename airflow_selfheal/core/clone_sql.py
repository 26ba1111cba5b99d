"""
Zero-copy clone SQL: CLONE/DROP/SWAP statements, clone names, and the view references a clone still makes to prod.

Every statement is built from strictly quoted identifiers (:func:`~airflow_selfheal.core.identifiers.quote_identifier`)
in Snowflake's documented spelling, so the text is exact and does not move with the sqlglot version. View DDL, which
comes from the warehouse and can be any query, is parsed with sqlglot (imported lazily; DAG parsing stays fast).

Object names are accepted in two forms:

* a string as it would be written in SQL, split on dots outside double quotes and resolved per part as Snowflake
  does (``demo.raw.orders`` is ``DEMO.RAW.ORDERS``; ``"Mixed".raw`` keeps ``Mixed``); anything that is not a valid
  identifier raises :class:`ValueError`, so SQL cannot be smuggled in through a name;
* a sequence of stored-form parts, used as they are (``("DEMO", "RAW", "ORDERS")``).

Clone names (:func:`clone_name`) carry the source database, the incident and the creation time, so a TTL sweep can
find orphaned clones and know their age from the name alone (``SHOW DATABASES`` on the embedded stand-in reports
every creation time as 1970):

.. code-block:: python

    name = clone_name("DEMO", "inc-0123abcd", created_at=failed_at)  # DEMO__SELFHEAL_INC_0123ABCD__20260101T100000Z
    sql = clone_database(name, "DEMO", at=failed_at)
    # CREATE DATABASE "DEMO__SELFHEAL_..." CLONE "DEMO" AT(TIMESTAMP => '2026-01-01 10:00:00.000000+00:00'::timestamp_tz)
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TypeAlias

from airflow_selfheal.core.identifiers import normalize_identifier, qualified, quote_identifier

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlglot import exp

log = logging.getLogger(__name__)

#: A name as written in SQL (``demo.raw.orders``) or as stored-form parts (``("DEMO", "RAW", "ORDERS")``).
ObjectName: TypeAlias = str | Sequence[str]

CLONE_MARKER = "SELFHEAL"
MAX_IDENTIFIER_LENGTH = 255
#: The longest source-database prefix kept in a clone name; the rest of the 255 characters go to the incident.
MAX_PREFIX_LENGTH = 100
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_CLONE_NAME = re.compile(
    rf"^(?P<prefix>[A-Z_][A-Z0-9_]*?)__{CLONE_MARKER}_(?P<incident>[A-Z0-9][A-Z0-9_]*?)__(?P<stamp>\d{{8}}T\d{{6}}Z)$"
)
_NOT_NAME_CHARS = re.compile(r"[^A-Z0-9]+")
_HASH_LENGTH = 8


# --------------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------------


def split_qualified(name: str) -> tuple[str, ...]:
    """
    Split a dotted name as written in SQL into stored-form parts.

    :param name: e.g. ``demo.raw.orders`` or ``"My.Db".raw."x""y"``.
    :return: e.g. ``("DEMO", "RAW", "ORDERS")`` or ``("My.Db", "RAW", 'x"y')``.
    :raises ValueError: on an empty part, an unterminated quote or an invalid unquoted identifier.
    """
    parts: list[str] = []
    index, length = 0, len(name)
    while True:
        while index < length and name[index].isspace():
            index += 1
        if index < length and name[index] == '"':
            end = index + 1
            while True:
                end = name.find('"', end)
                if end == -1:
                    raise ValueError(f"unterminated quoted identifier in {name!r}")
                if end + 1 < length and name[end + 1] == '"':
                    end += 2
                    continue
                break
            parts.append(normalize_identifier(name[index : end + 1]))
            index = end + 1
            while index < length and name[index].isspace():
                index += 1
        else:
            end = name.find(".", index)
            end = length if end == -1 else end
            part = name[index:end].strip()
            if not part:
                raise ValueError(f"empty name part in {name!r}")
            parts.append(normalize_identifier(part))
            index = end
        if index >= length:
            return tuple(parts)
        if name[index] != ".":
            raise ValueError(f"unexpected {name[index]!r} after a quoted identifier in {name!r}")
        index += 1


def name_parts(name: ObjectName, count: int, what: str = "name") -> tuple[str, ...]:
    """
    Stored-form parts of ``name``, which must have exactly ``count`` parts.

    :param name: see :data:`ObjectName`.
    :param count: 1 for a database, 2 for a schema, 3 for a table.
    :param what: how the error message calls the name.
    :return: the parts.
    :raises ValueError: on the wrong number of parts or an invalid part.
    """
    if isinstance(name, str):
        parts = split_qualified(name)
    else:
        parts = tuple(name)
        for part in parts:
            quote_identifier(part)
    if len(parts) != count:
        expected = ("DATABASE", "DATABASE.SCHEMA", "DATABASE.SCHEMA.TABLE")[count - 1]
        raise ValueError(f"{what} must be {expected}, got {name!r}")
    return parts


def _name_token(text: str) -> str:
    """Upper-case ``text`` and squeeze every run of other characters to one ``_``."""
    return _NOT_NAME_CHARS.sub("_", text.upper()).strip("_")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH].upper()


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class CloneName:
    """
    A clone name taken apart by :func:`parse_clone_name`.

    :param name: the full name.
    :param prefix: the source database's part, e.g. ``DEMO``.
    :param incident: the incident's part, upper-cased with ``-`` as ``_``, e.g. ``INC_0123ABCD``.
    :param created_at: when the clone was created (UTC, second precision).
    """

    name: str
    prefix: str
    incident: str
    created_at: datetime


def clone_name(prefix: str, incident_id: str, *, created_at: datetime | None = None) -> str:
    """
    A unique clone name for an incident: ``<PREFIX>__SELFHEAL_<INCIDENT>__<YYYYMMDDTHHMMSSZ>``.

    Only ``[A-Z0-9_]`` is used, so the name is also a valid unquoted identifier, and ``__`` appears only as the
    separator. The incident part is the id upper-cased with other characters as ``_``; when that loses
    information (an id that is not lower- or upper-case with ``-`` or ``_`` separators) or the name would exceed
    255 characters, 8 hex digits of the id's sha256 are appended, so different incidents never share a clone.
    The stamp makes a second clone for the same incident (a retried task) a new database rather than a reuse.

    :param prefix: the source database, e.g. ``DEMO``.
    :param incident_id: e.g. ``inc-0123abcd``.
    :param created_at: the creation time (timezone-aware); default now.
    :return: e.g. ``DEMO__SELFHEAL_INC_0123ABCD__20260101T100000Z``.
    :raises ValueError: on an empty incident id or a naive ``created_at``.
    """
    moment = _utc(created_at, "created_at") if created_at else datetime.now(timezone.utc)
    head = _name_token(prefix)[:MAX_PREFIX_LENGTH].rstrip("_") or "CLONE"
    if head[0].isdigit():
        head = f"DB_{head}"
    incident = _name_token(incident_id)
    if not incident:
        raise ValueError(f"incident_id {incident_id!r} has no letters or digits")
    lossless = incident_id in (incident, incident.lower().replace("_", "-"), incident.lower())
    stamp = moment.strftime(_STAMP_FORMAT)
    budget = MAX_IDENTIFIER_LENGTH - len(head) - len(f"__{CLONE_MARKER}_") - len(f"__{stamp}")
    if not lossless or len(incident) > budget:
        keep = budget - _HASH_LENGTH - 1
        incident = f"{incident[:keep].rstrip('_')}_{_short_hash(incident_id)}"
    return f"{head}__{CLONE_MARKER}_{incident}__{stamp}"


def parse_clone_name(name: str) -> CloneName | None:
    """
    Take a clone name apart; None if ``name`` is not one made by :func:`clone_name`.

    This is the guard against dropping prod: only names that parse here are ever dropped.

    :param name: a stored-form database name.
    :return: the parts, or None.
    """
    match = _CLONE_NAME.match(name)
    if match is None:
        return None
    try:
        created_at = datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return CloneName(name=name, prefix=match["prefix"], incident=match["incident"], created_at=created_at)


# --------------------------------------------------------------------------------------------------------------
# Statements
# --------------------------------------------------------------------------------------------------------------


def at_clause(at: datetime) -> str:
    """
    Snowflake's time-travel clause for a moment, in UTC with microseconds.

    :param at: a timezone-aware datetime.
    :return: e.g. ``AT(TIMESTAMP => '2026-01-01 10:00:00.000000+00:00'::timestamp_tz)``.
    :raises ValueError: on a naive datetime (its meaning would depend on the session's time zone).
    """
    literal = _utc(at, "at").isoformat(sep=" ", timespec="microseconds")
    return f"AT(TIMESTAMP => '{literal}'::timestamp_tz)"


def _with_at(sql: str, at: datetime | None) -> str:
    return sql if at is None else f"{sql} {at_clause(at)}"


def clone_database(target: ObjectName, source: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE DATABASE <target> CLONE <source> [AT(...)]``; never ``OR REPLACE``, so an existing name fails.

    :param target: the clone's name.
    :param source: the database to clone.
    :param at: clone the state at this moment (time travel); default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE DATABASE {qualified(*name_parts(target, 1, 'target'))} "
        f"CLONE {qualified(*name_parts(source, 1, 'source'))}",
        at,
    )


def clone_schema(target: ObjectName, source: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE SCHEMA <db.schema> CLONE <db.schema> [AT(...)]``.

    :param target: the new schema, ``DATABASE.SCHEMA``.
    :param source: the schema to clone, ``DATABASE.SCHEMA``.
    :param at: clone the state at this moment; default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE SCHEMA {qualified(*name_parts(target, 2, 'target'))} "
        f"CLONE {qualified(*name_parts(source, 2, 'source'))}",
        at,
    )


def clone_table(target_fqn: ObjectName, source_fqn: ObjectName, at: datetime | None = None) -> str:
    """
    ``CREATE TABLE <db.schema.table> CLONE <db.schema.table> [AT(...)]``.

    :param target_fqn: the new table, ``DATABASE.SCHEMA.TABLE``.
    :param source_fqn: the table to clone, ``DATABASE.SCHEMA.TABLE``.
    :param at: clone the state at this moment; default the current state.
    :return: the statement.
    """
    return _with_at(
        f"CREATE TABLE {qualified(*name_parts(target_fqn, 3, 'target_fqn'))} "
        f"CLONE {qualified(*name_parts(source_fqn, 3, 'source_fqn'))}",
        at,
    )


def create_database(name: ObjectName, if_not_exists: bool = False) -> str:
    """
    ``CREATE DATABASE [IF NOT EXISTS] <name>``.

    :param name: the database.
    :param if_not_exists: tolerate an existing database.
    :return: the statement.
    """
    clause = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE DATABASE {clause}{qualified(*name_parts(name, 1))}"


def create_schema(fqn: ObjectName, if_not_exists: bool = True) -> str:
    """
    ``CREATE SCHEMA [IF NOT EXISTS] <db.schema>``.

    :param fqn: ``DATABASE.SCHEMA``.
    :param if_not_exists: tolerate an existing schema.
    :return: the statement.
    """
    clause = "IF NOT EXISTS " if if_not_exists else ""
    return f"CREATE SCHEMA {clause}{qualified(*name_parts(fqn, 2))}"


def drop_database(name: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP DATABASE [IF EXISTS] <name>``. Callers must check the name first (see :func:`parse_clone_name`).

    :param name: the database.
    :param if_exists: tolerate a missing database.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP DATABASE {clause}{qualified(*name_parts(name, 1))}"


def drop_schema(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP SCHEMA [IF EXISTS] <db.schema> CASCADE``.

    :param fqn: ``DATABASE.SCHEMA``.
    :param if_exists: tolerate a missing schema.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP SCHEMA {clause}{qualified(*name_parts(fqn, 2))} CASCADE"


def drop_table(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP TABLE [IF EXISTS] <db.schema.table>``.

    :param fqn: ``DATABASE.SCHEMA.TABLE``.
    :param if_exists: tolerate a missing table.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP TABLE {clause}{qualified(*name_parts(fqn, 3))}"


def swap_tables(a: ObjectName, b: ObjectName) -> str:
    """
    ``ALTER TABLE <a> SWAP WITH <b>``: exchange two tables' contents and metadata in one atomic step.

    :param a: ``DATABASE.SCHEMA.TABLE``.
    :param b: ``DATABASE.SCHEMA.TABLE``.
    :return: the statement.
    """
    return f"ALTER TABLE {qualified(*name_parts(a, 3, 'a'))} SWAP WITH {qualified(*name_parts(b, 3, 'b'))}"


def show_clone_databases() -> str:
    """``SHOW DATABASES`` narrowed to names containing the clone marker; callers still check each name."""
    return f"SHOW DATABASES LIKE '%{CLONE_MARKER}%'"


def schemas_query(database: str) -> str:
    """
    The schemas of a database other than ``INFORMATION_SCHEMA``: ``SCHEMA_NAME``.

    :param database: stored-form database name.
    :return: the query.
    """
    return (
        f"select SCHEMA_NAME from {quote_identifier(database)}.INFORMATION_SCHEMA.SCHEMATA "  # noqa: S608
        "where SCHEMA_NAME <> 'INFORMATION_SCHEMA' order by SCHEMA_NAME"
    )


# --------------------------------------------------------------------------------------------------------------
# Metadata queries (one per database, whatever the number of objects)
# --------------------------------------------------------------------------------------------------------------


def _schema_filter(schema_count: int | None) -> str:
    if schema_count is None:
        return "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA' "
    if schema_count < 1:
        raise ValueError("schema_count must be at least 1 (or None for every schema)")
    return f"where TABLE_SCHEMA in ({', '.join(['%s'] * schema_count)}) "


def tables_query(database: str, schema_count: int | None = None) -> str:
    """
    Every table-like object of a database: ``TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE``.

    :param database: stored-form database name.
    :param schema_count: bind that many schema names as parameters; None for every schema.
    :return: the query.
    """
    return (
        "select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE "  # noqa: S608 - quoted identifier, bound values
        f"from {quote_identifier(database)}.INFORMATION_SCHEMA.TABLES "
        f"{_schema_filter(schema_count)}order by TABLE_SCHEMA, TABLE_NAME"
    )


def views_query(database: str, schema_count: int | None = None) -> str:
    """
    Every view of a database with its DDL: ``TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION``.

    :param database: stored-form database name.
    :param schema_count: bind that many schema names as parameters; None for every schema.
    :return: the query.
    """
    return (
        "select TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION "  # noqa: S608 - quoted identifier, bound values
        f"from {quote_identifier(database)}.INFORMATION_SCHEMA.VIEWS "
        f"{_schema_filter(schema_count)}order by TABLE_SCHEMA, TABLE_NAME"
    )


def row_counts_query(database: str, tables: Sequence[tuple[str, str]], at: datetime | None = None) -> str:
    """
    ``COUNT(*)`` of several tables in one statement, each row labelled by its index in ``tables``.

    On Snowflake a bare ``COUNT(*)`` is answered from table metadata, so this is cheap; on the stand-in it scans.

    :param database: stored-form database name.
    :param tables: ``(schema, table)`` pairs in stored form.
    :param at: count the state at this moment (time travel); default now.
    :return: a ``union all`` query returning ``(index, row_count)``.
    """
    if not tables:
        raise ValueError("tables must not be empty")
    return " union all ".join(
        f"select {index} as I, count(*) as N from {_with_at(qualified(database, schema, table), at)}"  # noqa: S608
        for index, (schema, table) in enumerate(tables)
    )


# --------------------------------------------------------------------------------------------------------------
# View DDL: references to prod, and retargeting at a clone
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferenceScan:
    """
    The result of :func:`scan_prod_references`.

    :param references: fully-qualified stored-form names (``PROD_DB.RAW.ORDERS``), sorted, each once.
    :param parsed: True if sqlglot parsed the DDL; False if the conservative regex was used instead.
    :param error: why parsing failed, when it did.
    """

    references: tuple[str, ...]
    parsed: bool
    error: str | None = None


def _stored(identifier: exp.Expr | None) -> str:
    """The stored form of a parsed identifier: unquoted names fold to upper case."""
    from sqlglot import exp

    if not isinstance(identifier, exp.Identifier):
        return ""
    return str(identifier.this) if identifier.quoted else str(identifier.this).upper()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain_error(exc: Exception) -> str:
    """The first line of an error without the terminal colours sqlglot adds."""
    return _ANSI.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parse_ddl(view_ddl: str) -> list[exp.Expr]:
    import sqlglot

    statements = [
        statement for statement in sqlglot.parse(view_ddl, read="snowflake") if statement is not None
    ]
    if not statements:
        raise ValueError("the DDL holds no statement")
    return statements


def _create_target(statement: exp.Expr) -> exp.Table | None:
    """The object a CREATE statement names (the view itself), which is not a reference."""
    from sqlglot import exp

    if not isinstance(statement, exp.Create):
        return None
    target = statement.this
    if isinstance(target, exp.Schema):
        target = target.this
    return target if isinstance(target, exp.Table) else None


def _explicit_databases(statement: exp.Expr) -> Iterator[tuple[exp.Identifier, tuple[str, ...]]]:
    """
    Every place the statement names a database explicitly: ``(database identifier, stored-form parts)``.

    Covers tables (``DB.SCHEMA.T``, ``DB..T``), four-part column references (``DB.SCHEMA.T.COL``) and qualified
    function or sequence calls (``DB.SCHEMA.F(x)``). The statement's own target is skipped.
    """
    from sqlglot import exp

    target = _create_target(statement)
    for node in statement.find_all(exp.Table, exp.Column, exp.Dot):
        if node is target:
            continue
        if isinstance(node, exp.Table):
            catalog = node.args.get("catalog")
            if isinstance(node.this, exp.Identifier) and isinstance(catalog, exp.Identifier) and catalog.this:
                schema = _stored(node.args.get("db")) or "PUBLIC"
                yield catalog, (_stored(catalog), schema, _stored(node.this))
        elif isinstance(node, exp.Column):
            catalog = node.args.get("catalog")
            if isinstance(catalog, exp.Identifier) and catalog.this:
                yield (
                    catalog,
                    (_stored(catalog), _stored(node.args.get("db")), _stored(node.args.get("table"))),
                )
        elif not isinstance(node.parent, exp.Dot):
            chain: list[exp.Expr] = []
            current: exp.Expr = node
            while isinstance(current, exp.Dot):
                chain.append(current.expression)
                current = current.this
            if isinstance(current, exp.Identifier) and len(chain) >= 2:
                names = [_stored(current)]
                for part in reversed(chain):
                    names.append(
                        _stored(part) if isinstance(part, exp.Identifier) else str(part.name).upper()
                    )
                yield current, tuple(names[:3])


def _regex_references(view_ddl: str, prod_database: str) -> tuple[str, ...]:
    """Conservative fallback: any ``<prod>.<part>[.<part>]`` in the text, string literals and comments included."""
    part = r'(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)?'
    database = re.escape(quote_identifier(prod_database))
    if re.fullmatch(r"[A-Z_][A-Z0-9_$]*", prod_database):
        database = rf"(?:{database}|(?<![A-Za-z0-9_$\".]){re.escape(prod_database)}(?![A-Za-z0-9_$]))"
        flags: int = re.IGNORECASE
    else:
        flags = 0
    pattern = re.compile(rf"{database}\s*\.\s*({part})(?:\s*\.\s*({part}))?", flags)
    found = set()
    for match in pattern.finditer(view_ddl):
        parts = []
        for raw in match.groups():
            if not raw:
                parts.append("")
                continue
            try:
                parts.append(normalize_identifier(raw))
            except ValueError:
                parts.append(raw.upper())
        schema, name = parts
        if name:
            found.add(f"{prod_database}.{schema or 'PUBLIC'}.{name}")
        elif schema:
            # ``PROD.X`` alone: a schema-qualified name with nothing after it; keep it, the regex cannot tell.
            found.add(f"{prod_database}.{schema}")
    return tuple(sorted(found))


def scan_prod_references(view_ddl: str, prod_database: str) -> ReferenceScan:
    """
    The fully-qualified references a view's DDL makes to ``prod_database``.

    A cloned view keeps fully-qualified names, so ``select * from PROD_DB.RAW.ORDERS`` in a clone still reads
    prod. Names without a database (``RAW.ORDERS``, ``ORDERS``) resolve inside the clone and are not reported,
    and neither is the view's own name. The DDL is parsed with sqlglot; only if parsing fails does a conservative
    regex run instead (it may over-report, e.g. a name inside a string literal, never under-report a plain
    reference), and the result says so with ``parsed=False``.

    :param view_ddl: the view's DDL, e.g. ``INFORMATION_SCHEMA.VIEWS.VIEW_DEFINITION``.
    :param prod_database: stored-form name of the prod database, e.g. ``PROD_DB``.
    :return: the scan.
    """
    from sqlglot.errors import SqlglotError

    try:
        statements = _parse_ddl(view_ddl)
    except (SqlglotError, ValueError) as exc:
        error = _plain_error(exc)
        log.warning("could not parse view DDL (%s); scanning it with a conservative regex instead", error)
        return ReferenceScan(_regex_references(view_ddl, prod_database), parsed=False, error=error)
    found = {
        ".".join(parts)
        for statement in statements
        for identifier, parts in _explicit_databases(statement)
        if _stored(identifier) == prod_database
    }
    return ReferenceScan(tuple(sorted(found)), parsed=True)


def find_prod_references(view_ddl: str, prod_database: str) -> list[str]:
    """
    The fully-qualified references a view's DDL makes to prod; see :func:`scan_prod_references`.

    :param view_ddl: the view's DDL.
    :param prod_database: stored-form name of the prod database.
    :return: e.g. ``["PROD_DB.RAW.ORDERS"]``.
    """
    return list(scan_prod_references(view_ddl, prod_database).references)


def retarget_view_ddl(
    view_ddl: str, *, source_database: str, target_database: str, view_schema: str, view_name: str
) -> str:
    """
    Rewrite a view's DDL so that it creates the view in ``target_database`` and reads only from there.

    The statement becomes ``CREATE OR REPLACE ... VIEW "<target>"."<schema>"."<name>"``. Every explicit
    reference to ``source_database`` (tables, four-part columns, qualified functions) is pointed at the target,
    and names without a database are qualified with the target (and the view's schema when they have none), so
    the result does not depend on the session's current database. CTE names, table functions and references to
    other databases are left as written.

    :param view_ddl: the source view's DDL.
    :param source_database: stored-form name of the database the view was cloned from.
    :param target_database: stored-form name of the clone.
    :param view_schema: stored-form schema of the view.
    :param view_name: stored-form name of the view.
    :return: the rewritten DDL (Snowflake dialect).
    :raises ValueError: if the DDL does not parse or is not a single ``CREATE VIEW``.
    """
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = _parse_ddl(view_ddl)
    except SqlglotError as exc:
        raise ValueError(f"the view DDL does not parse: {_plain_error(exc)}") from exc
    statement = statements[0]
    if len(statements) != 1 or not isinstance(statement, exp.Create) or statement.kind != "VIEW":
        raise ValueError("the DDL is not a single CREATE VIEW statement")

    def quoted(name: str) -> exp.Identifier:
        return exp.Identifier(this=name, quoted=True)

    for identifier, _ in list(_explicit_databases(statement)):
        if _stored(identifier) == source_database:
            identifier.replace(quoted(target_database))

    target = _create_target(statement)
    ctes = set()
    for cte in statement.find_all(exp.CTE):
        alias = cte.args.get("alias")
        if isinstance(alias, exp.TableAlias):
            ctes.add(_stored(alias.this))
    for table in statement.find_all(exp.Table):
        if table is target or not isinstance(table.this, exp.Identifier):
            continue
        catalog = table.args.get("catalog")
        if isinstance(catalog, exp.Identifier) and catalog.this:
            continue
        db = table.args.get("db")
        if not (isinstance(db, exp.Identifier) and db.this):
            if _stored(table.this) in ctes:
                continue
            table.set("db", quoted(view_schema))
        table.set("catalog", quoted(target_database))

    new_target = exp.Table(this=quoted(view_name), db=quoted(view_schema), catalog=quoted(target_database))
    if isinstance(statement.this, exp.Schema):
        statement.this.set("this", new_target)
    else:
        statement.set("this", new_target)
    statement.set("replace", True)
    statement.set("exists", False)
    return str(statement.sql(dialect="snowflake"))


#: Dialects a warehouse may report view text in, tried in this order: Snowflake keeps the text as written; the
#: embedded stand-in reports it in DuckDB's spelling (``date_diff('DAY', a, b)``, ``CASE`` for ``IFF``).
VIEW_TEXT_DIALECTS = ("snowflake", "duckdb")


def view_ddl_candidates(
    view_ddl: str,
    *,
    source_database: str,
    target_database: str,
    view_schema: str,
    view_name: str,
    dialects: Sequence[str] = VIEW_TEXT_DIALECTS,
) -> list[tuple[str, str]]:
    """
    The ways to re-create a view in a clone from the text the warehouse reports, most likely first.

    A view's text may come back in another dialect than it was written in (the embedded stand-in answers with
    DuckDB's rendering of the Snowflake it was given). Read as Snowflake, such text can parse and still mean
    something else (DuckDB's ``date_diff('DAY', a, b)`` read as Snowflake's ``DATEDIFF`` swaps its arguments), so
    each reading is only a candidate: the caller creates it and checks the view's rows before keeping it.

    :param view_ddl: the source view's DDL as the warehouse reports it.
    :param source_database: stored-form name of the database the view belongs to.
    :param target_database: stored-form name of the clone.
    :param view_schema: stored-form schema of the view.
    :param view_name: stored-form name of the view.
    :param dialects: sqlglot dialects to read the text in, in order.
    :return: ``(dialect, Snowflake DDL for the clone)`` per distinct reading that parses.
    :raises ValueError: when the text parses in none of ``dialects`` (the last reason is named).
    """
    import sqlglot
    from sqlglot.errors import SqlglotError

    candidates: list[tuple[str, str]] = []
    errors: list[str] = []
    for dialect in dialects:
        try:
            text = view_ddl
            if dialect != "snowflake":
                statements = [s for s in sqlglot.parse(view_ddl, read=dialect) if s is not None]
                if len(statements) != 1:
                    raise ValueError("the DDL is not a single statement")
                text = statements[0].sql(dialect="snowflake")
            ddl = retarget_view_ddl(
                text,
                source_database=source_database,
                target_database=target_database,
                view_schema=view_schema,
                view_name=view_name,
            )
        except (SqlglotError, ValueError) as exc:
            errors.append(f"{dialect}: {_plain_error(exc)}")
            continue
        if all(ddl != known for _, known in candidates):
            candidates.append((dialect, ddl))
    if not candidates:
        raise ValueError(f"the view DDL does not parse in {', '.join(dialects)} ({'; '.join(errors)})")
    return candidates


def drop_view(fqn: ObjectName, if_exists: bool = True) -> str:
    """
    ``DROP VIEW [IF EXISTS] <db.schema.view>``.

    :param fqn: ``DATABASE.SCHEMA.VIEW``.
    :param if_exists: tolerate a missing view.
    :return: the statement.
    """
    clause = "IF EXISTS " if if_exists else ""
    return f"DROP VIEW {clause}{qualified(*name_parts(fqn, 3))}"


def view_rows_check_query(clone_fqn: ObjectName, source_fqn: ObjectName) -> str:
    """
    Compare a view in the clone with its source row for row.

    The query returns ``(clone rows, source rows, only in clone, only in source)``.

    Set difference both ways plus the counts catches a view that was re-created with another meaning, which
    neither its columns nor its creation reveal. Only re-created views are compared this way, since it runs both.

    :param clone_fqn: ``DATABASE.SCHEMA.VIEW`` in the clone.
    :param source_fqn: the same view in the source.
    :return: one query returning one row of four counts.
    """
    clone = qualified(*name_parts(clone_fqn, 3, "clone_fqn"))
    source = qualified(*name_parts(source_fqn, 3, "source_fqn"))
    return (
        f"select (select count(*) from {clone}) as CLONE_ROWS, "  # noqa: S608 - quoted identifiers only
        f"(select count(*) from {source}) as SOURCE_ROWS, "
        f"(select count(*) from (select * from {clone} except select * from {source})) as ONLY_IN_CLONE, "
        f"(select count(*) from (select * from {source} except select * from {clone})) as ONLY_IN_SOURCE"
    )
