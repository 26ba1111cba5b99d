"""A SQL file loaded for the rules: read from the sandbox, its Jinja masked, parsed as one Snowflake query."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.context import _Context, _path_of
from airflow_selfheal.core.fixes.jinja import _mask, _Masked
from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlglot import exp


DIALECT = "snowflake"


@dataclass
class _Sql:
    node: Mapping[str, Any]
    path: str
    text: str
    masked: _Masked
    tree: exp.Query

    @property
    def name(self) -> str:
        return str(self.node.get("name"))

    def written(self, start: int, end: int) -> str:
        return self.masked.text[start:end]


def _parse(text: str, path: str) -> exp.Query:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [statement for statement in sqlglot.parse(text, read=DIALECT) if statement is not None]
    except SqlglotError as exc:
        detail = _one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:200]
        raise _Escalate(
            f"{path} does not parse as Snowflake SQL once its Jinja is masked ({detail}); "
            "the rewriter never falls back to text replacement"
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise _Escalate(f"{path} is not a single select statement once its Jinja is masked")
    return statements[0]


def _load_sql(context: _Context, node: Mapping[str, Any], text: str | None = None) -> _Sql:
    path = _path_of(node)
    if node.get("language", "sql") != "sql" or not path.endswith(".sql"):
        raise _Escalate(f"{path} is not a SQL file; the rules rewrite only SQL")
    body = context.read(path) if text is None else text
    masked = _mask(body, path)
    return _Sql(node, path, body, masked, _parse(masked.text, path))


def _canonical(tree: exp.Expr) -> str:
    return tree.sql(dialect=DIALECT, comments=False)
