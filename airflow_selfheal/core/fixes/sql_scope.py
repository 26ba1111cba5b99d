"""
Which columns of a parsed file resolve to one source table, found through sqlglot's scopes.

Only columns that resolve to the source change: unqualified in a scope reading only it, qualified by its alias,
or reached through a CTE or subquery that passes it on with ``*``. An ambiguous reference, the name in a
position the rewriter does not handle, or Jinja that may involve the column escalates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.context import _Context, _path_of, _Source
from airflow_selfheal.core.fixes.jinja import _EXPANDING_MACRO, _PLACEHOLDER_PREFIX, _macro_column_arguments
from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.sql_names import _mentions, _stored
from airflow_selfheal.core.fixes.sql_parse import DIALECT, _load_sql, _Sql
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlglot import exp
    from sqlglot.optimizer.scope import Scope


@dataclass(frozen=True)
class _Use:
    """A column reference and what it resolves to: ``source``, ``other`` or ``ambiguous``."""

    column: exp.Column
    scope: Scope
    verdict: str


class _Analysis:
    """Which columns of a parsed file resolve to one source table, found through sqlglot's scopes."""

    def __init__(self, sql: _Sql, source: _Source) -> None:
        from sqlglot import exp
        from sqlglot.errors import SqlglotError
        from sqlglot.optimizer.scope import traverse_scope

        self.sql = sql
        self.source = source
        self.placeholders = {
            placeholder
            for placeholder, (source_name, name) in sql.masked.sources.items()
            if (source_name, name.casefold()) == (source.source_name, source.name.casefold())
        }
        try:
            self.scopes = list(traverse_scope(sql.tree))
        except SqlglotError as exc:
            raise _Escalate(
                f"{sql.path}: sqlglot cannot resolve its scopes ({_one_line(exc)[:160]})"
            ) from None
        if not self.scopes:
            raise _Escalate(f"{sql.path} has no query scope to analyse")
        self.root = self.scopes[-1]
        self.macro_uses: dict[str, list[tuple[int, int]]] = {}
        self._exposing: set[int] = set()
        for scope in self.scopes:  # innermost first, so a scope's sources are classified before it
            if self._exposes(scope):
                self._exposing.add(id(scope.expression))
        # Every column of the tree, resolved in its innermost scope. (``Scope.columns`` leaves out some, such as
        # a window's ``partition by`` or an ``order by`` naming an output column.)
        by_expression = {id(scope.expression): scope for scope in self.scopes}
        self.uses: list[_Use] = []
        for column in sql.tree.find_all(exp.Column):
            if isinstance(column.this, exp.Star) or column.name.lower().startswith(_PLACEHOLDER_PREFIX):
                continue
            owner: exp.Expr | None = column.parent
            while owner is not None and id(owner) not in by_expression:
                owner = owner.parent
            if owner is None:
                raise _Escalate(
                    f"{sql.path}: cannot tell which query {column.sql(dialect=DIALECT)} belongs to"
                )
            scope = by_expression[id(owner)]
            self.uses.append(_Use(column, scope, self._verdict(column, scope)))
        self.uses.sort(key=lambda use: _span(use.column)[0])  # the order in which the file reads them

    @property
    def reads_source(self) -> bool:
        return bool(self.placeholders)

    def is_raw(self, source: Any) -> bool:
        """A selected source is the source table itself, or a subquery/CTE passing its columns on with ``*``."""
        from sqlglot import exp

        if isinstance(source, exp.Table):
            return not source.args.get("db") and source.name.lower() in self.placeholders
        from sqlglot.optimizer.scope import Scope

        return isinstance(source, Scope) and id(source.expression) in self._exposing

    def exposes(self, scope: Scope) -> bool:
        return id(scope.expression) in self._exposing

    def _exposes(self, scope: Scope) -> bool:
        from sqlglot import exp

        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            return any(self.is_raw(branch) for branch in _branches(scope))
        if not isinstance(expression, exp.Select):
            return False
        selected = {name: source for name, (_, source) in scope.selected_sources.items()}
        for projection in expression.expressions:
            if isinstance(projection, exp.Star):
                covered = list(selected.values())
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                covered = [_lookup(selected, projection.table)]
            else:
                continue
            if any(source is not None and self.is_raw(source) for source in covered):
                return True
        return False

    def _verdict(self, column: exp.Column, scope: Scope) -> str:
        current: Scope | None = scope
        qualifier = column.table
        if qualifier:
            while current is not None:
                found = _lookup(
                    {name: source for name, (_, source) in current.selected_sources.items()}, qualifier
                )
                if found is not None:
                    return "source" if self.is_raw(found) else "other"
                current = current.parent
            return "other"
        while current is not None:
            sources = [source for _, source in current.selected_sources.values()]
            if not sources:
                current = current.parent
                continue
            if not any(self.is_raw(source) for source in sources):
                return "other"
            return "source" if len(sources) == 1 else "ambiguous"
        return "other"

    def source_uses(self, stored: str) -> list[_Use]:
        """The references to a source column; escalates on an ambiguous one or an unsupported position."""
        self._check_positions(stored)
        from sqlglot import exp

        uses = [use for use in self.uses if _stored(use.column.this) == stored and use.verdict != "other"]
        for use in uses:
            if use.verdict == "ambiguous":
                raise _Escalate(
                    f"{self.sql.path} reads {use.column.sql(dialect=DIALECT)} unqualified in a join with "
                    f"{self.source.label}; which table it comes from is unclear, so qualify it with the table "
                    "alias first"
                )
            select = use.scope.expression
            if use.column.table or not isinstance(select, exp.Select):
                continue
            if _projection_containing(use.column, select) is None and any(
                isinstance(item, exp.Alias) and _stored(item.args["alias"]) == stored
                for item in select.expressions
            ):
                # Outside the select list, Snowflake may resolve the name to the output alias instead.
                raise _Escalate(
                    f"{self.sql.path} names {stored} both as a column of {self.source.label} and as an output "
                    "alias, and reads it outside the select list; which one it means is unclear"
                )
        return uses

    def screen(self, stored: str, mentioned: bool, *, macro_arguments: bool = False) -> None:
        """
        Escalate when the file may involve the column in a way the rewriter cannot see.

        With ``macro_arguments``, a Jinja macro call that names the column only as a string argument
        (``{{ cents_to_dollars('amount_cents') }}``) in a query reading the source is accepted and recorded in
        :attr:`macro_uses`, for the rule to edit that argument.
        """
        self.macro_uses = {}
        for placeholder, jinja in self.sql.masked.segments.items():
            if not _mentions(jinja, stored):
                continue
            spans = _macro_column_arguments(jinja, stored) if macro_arguments else None
            if spans and self._reads_source_at(placeholder):
                self.macro_uses[placeholder] = spans
                continue
            if _mentions(jinja, stored):
                raise _Escalate(
                    f"{self.sql.path} names {stored} inside Jinja ({_one_line(jinja)[:80]}); the rewriter does "
                    "not change Jinja"
                )
        if mentioned and not self.reads_source:
            raise _Escalate(
                f"{self.sql.path} names {stored} but does not select from {self.source.jinja}; a person must "
                "change it"
            )
        self.check_expanding_jinja()

    def _reads_source_at(self, placeholder: str) -> bool:
        """Whether a Jinja expression sits, unqualified, in a query whose only input is the source."""
        from sqlglot import exp

        by_expression = {id(scope.expression): scope for scope in self.scopes}
        found = False
        for column in self.sql.tree.find_all(exp.Column):
            if column.name.lower() != placeholder.lower():
                continue
            owner: exp.Expr | None = column.parent
            while owner is not None and id(owner) not in by_expression:
                owner = owner.parent
            if owner is None or column.table or self._verdict(column, by_expression[id(owner)]) != "source":
                return False
            found = True
        return found

    def _check_positions(self, stored: str) -> None:
        """Every identifier with the name must be a column, an output alias or a table name."""
        from sqlglot import exp

        for identifier in self.sql.tree.find_all(exp.Identifier):
            if _stored(identifier) != stored:
                continue
            parent = identifier.parent
            if isinstance(parent, exp.Column):
                continue
            if isinstance(parent, (exp.Alias, exp.Table, exp.TableAlias)) and identifier.arg_key in (
                "alias",
                "this",
            ):
                continue
            context = parent.sql(dialect=DIALECT) if parent is not None else identifier.sql(dialect=DIALECT)
            raise _Escalate(
                f"{self.sql.path} uses {stored} in a position the rewriter does not handle "
                f"({_one_line(context)[:120]}); a person must change it"
            )

    def check_expanding_jinja(self) -> None:
        """A Jinja expression in a select list over the source may expand to its columns (``dbt_utils.star``)."""
        from sqlglot import exp

        for scope in self.scopes:
            expression = scope.expression
            if not isinstance(expression, exp.Select):
                continue
            if not any(self.is_raw(source) for _, source in scope.selected_sources.values()):
                continue
            for projection in expression.expressions:
                for column in projection.find_all(exp.Column):
                    jinja = self.sql.masked.expressions.get(column.name.lower())
                    if jinja is not None and _EXPANDING_MACRO.search(jinja):
                        raise _Escalate(
                            f"{self.sql.path} selects {_one_line(jinja)!r} from the source; it may expand to the "
                            "source's columns, which the rewriter cannot see"
                        )

    def contract(self) -> list[str]:
        """The source's columns this file reads for certain, in order of first appearance, stored form."""
        from sqlglot import exp

        names: list[str] = []
        for use in self.uses:
            if use.verdict != "source":
                continue
            name = _stored(use.column.this)
            select = use.scope.expression
            if isinstance(select, exp.Select):
                # Snowflake lets a clause name another select item's alias; such a name may not be a column.
                owner = _projection_containing(use.column, select)
                aliases = {
                    _stored(projection.args["alias"])
                    for projection in select.expressions
                    if isinstance(projection, exp.Alias) and projection is not owner
                }
                if name in aliases:
                    continue
            if name not in names:
                names.append(name)
        return names


def _lookup(mapping: Mapping[str, Any], name: str) -> Any:
    if name in mapping:
        return mapping[name]
    folded = name.casefold()
    matches = [value for key, value in mapping.items() if key.casefold() == folded]
    return matches[0] if len(matches) == 1 else None


def _projection_containing(node: exp.Expr, select: exp.Select) -> exp.Expr | None:
    current: exp.Expr | None = node
    while current is not None and current.parent is not select:
        current = current.parent
    if current is not None and current.arg_key == "expressions":
        return current
    return None


def _branches(scope: Scope) -> list[Scope]:
    """The branch scopes of a set operation (``set_operation_scopes``; ``union_scopes`` before sqlglot 27)."""
    branches = getattr(scope, "set_operation_scopes", None) or getattr(scope, "union_scopes", None) or []
    return list(branches)


def _is_bare_projection(column: exp.Column) -> bool:
    from sqlglot import exp

    return isinstance(column.parent, exp.Select) and column.arg_key == "expressions"


def _span(node: exp.Expr) -> tuple[int, int]:
    """``[start, end)`` of a column or an aliased column in the masked text, from the tokens' positions."""
    from sqlglot import exp

    starts: list[int] = []
    ends: list[int] = []
    for identifier in node.find_all(exp.Identifier):
        meta = identifier.meta
        if "start" not in meta or "end" not in meta:
            raise _Escalate(f"sqlglot gave no position for {identifier.sql(dialect=DIALECT)}")
        starts.append(int(meta["start"]))
        ends.append(int(meta["end"]) + 1)
    if not starts:
        raise _Escalate(f"sqlglot gave no position for {node.sql(dialect=DIALECT)}")
    return min(starts), max(ends)


def _analyse_reader(
    context: _Context,
    reader: Mapping[str, Any],
    source: _Source,
    stored: str,
    *,
    macro_arguments: bool = False,
) -> _Analysis | None:
    """
    Parse and screen a file that reads the source directly; None when it cannot involve the column.

    A file that does not parse is skipped only if it does not name the column at all.
    """
    path = _path_of(reader)
    text = context.read(path)
    mentioned = _mentions(text, stored)
    try:
        sql = _load_sql(context, reader, text)
    except _Escalate:
        if mentioned:
            raise
        return None
    analysis = _Analysis(sql, source)
    analysis.screen(stored, mentioned, macro_arguments=macro_arguments)
    return analysis
