"""
View DDL: the references a cloned view still makes to prod, and the view's text retargeted at the clone.

View DDL comes from the warehouse and can be any query, so it is parsed with sqlglot (imported lazily inside
the functions; DAG parsing stays fast).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_selfheal.core.identifiers import normalize_identifier, quote_identifier

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from sqlglot import exp

log = logging.getLogger(__name__)


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
