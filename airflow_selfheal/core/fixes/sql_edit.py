"""
SQL edits at the tokens' exact positions, checked by parsing the result again.

Comments, layout and Jinja stay as written, so the diff is as small as the change. The edited SQL is parsed
again and must equal the parsed original with the same change made on its tree; any mismatch escalates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.fixes.jinja import _JINJA, _Masked
from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.sql_parse import DIALECT, _canonical, _parse, _Sql
from airflow_selfheal.core.fixes.sql_scope import _Analysis, _is_bare_projection, _span, _Use
from airflow_selfheal.core.guards import jinja_delimiters

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlglot import exp


def _edit_macro_arguments_to(analysis: _Analysis, placeholder: str, replacement: str) -> str:
    """
    One recorded macro use's Jinja with its column arguments replaced by ``replacement``.

    The replacement lands inside a Jinja string literal, where a quote or a backslash would end or escape the
    string and turn the rest into Jinja code, and a delimiter would end the expression: either escalates.
    """
    jinja = analysis.sql.masked.segments[placeholder]
    if any(char in replacement for char in "'\"\\\n\r") or jinja_delimiters(replacement):
        raise _Escalate(
            f"{analysis.sql.path} passes the column to a macro by name, and {replacement!r} cannot be written "
            "inside a Jinja string safely; a person must change it"
        )
    for start, end in sorted(analysis.macro_uses[placeholder], reverse=True):
        jinja = jinja[:start] + replacement + jinja[end:]
    return jinja


@dataclass(frozen=True, order=True)
class _Edit:
    start: int
    end: int
    text: str


def _apply(masked: _Masked, edits: Sequence[_Edit]) -> str:
    ordered = sorted(edits)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.start < before.end:
            raise _Escalate(f"two edits to {masked.path} overlap; a person must change it")
    for edit in ordered:
        for start, end in masked.spans():
            if edit.start < end and start < edit.end:
                raise _Escalate(f"an edit to {masked.path} would touch its Jinja; a person must change it")
    text = masked.text
    for edit in reversed(ordered):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def _finish(sql: _Sql, edited: str, expected: exp.Expr, jinja_edits: Mapping[str, str] | None = None) -> str:
    """
    Check the edited SQL parses to the expected tree, then put the Jinja back.

    :param jinja_edits: placeholder to new Jinja, for the macro arguments a rule rewrote; all other Jinja must
        come back exactly as written.
    """
    if _canonical(_parse(edited, sql.path)) != _canonical(expected):
        raise _Escalate(f"the edit to {sql.path} did not produce the intended SQL; a person must change it")
    restored = sql.masked.unmask(edited, jinja_edits)
    if _JINJA.findall(restored) != _JINJA.findall(sql.masked.unmask(sql.masked.text, jinja_edits)):
        raise _Escalate(f"rewriting {sql.path} would change its Jinja; a person must change it")
    return restored


def _replace_columns(
    sql: _Sql,
    uses: Sequence[_Use],
    rewrite: Callable[[exp.Column, str], str],
    jinja_edits: Mapping[str, str] | None = None,
) -> str:
    """
    Replace each column with ``rewrite(column, written)``; a bare select item keeps its output name.

    ``written`` is the column as written (``o.customer_email``). The expected tree is the original with each
    column replaced by the parse of the same snippet.
    """
    import sqlglot
    from sqlglot import exp

    edits = []
    replacements: list[tuple[exp.Column, str]] = []
    for use in uses:
        start, end = _span(use.column)
        snippet = rewrite(use.column, sql.written(start, end))
        if _is_bare_projection(use.column):
            name_start, name_end = _span(use.column.this)
            snippet = f"{snippet} as {sql.written(name_start, name_end)}"
        edits.append(_Edit(start, end, snippet))
        replacements.append((use.column, snippet))
    edited = _apply(sql.masked, edits)
    for column, snippet in replacements:
        parsed = sqlglot.parse_one(f"select {snippet}", read=DIALECT)
        column.replace(parsed.expressions[0] if isinstance(parsed, exp.Select) else parsed)
    return _finish(sql, edited, sql.tree, jinja_edits)


def _tokens(sql: _Sql) -> list[Any]:
    from sqlglot.dialects.dialect import Dialect

    return list(Dialect.get_or_raise(DIALECT).tokenize(sql.masked.text))


def _line_bounds(text: str, position: int) -> tuple[int, int]:
    """``[start, end)`` of the line holding ``position``, the newline included in ``end``."""
    start = text.rfind("\n", 0, position) + 1
    newline = text.find("\n", position)
    return start, len(text) if newline == -1 else newline + 1


_LINE_TAIL = re.compile(r"[ \t]*(?:--[^\n]*)?\n?")


def _removal_edits(sql: _Sql, projection: exp.Expr) -> list[_Edit]:
    """Edits that delete one select-list item with its comma, and its line when it has one to itself."""
    text = sql.masked.text
    start, end = _span(projection)
    tokens = _tokens(sql)
    first = next((index for index, token in enumerate(tokens) if token.start == start), None)
    last = next((index for index, token in enumerate(tokens) if token.end + 1 == end), None)
    if first is None or last is None:
        raise _Escalate(f"cannot locate {projection.sql(dialect=DIALECT)} in {sql.path}")
    comma_before = tokens[first - 1] if first > 0 and tokens[first - 1].token_type.name == "COMMA" else None
    comma_after = (
        tokens[last + 1] if last + 1 < len(tokens) and tokens[last + 1].token_type.name == "COMMA" else None
    )
    comma = comma_after or comma_before
    if comma is None:
        raise _Escalate(f"{projection.sql(dialect=DIALECT)} is the only select item in {sql.path}")

    line_start, line_end = _line_bounds(text, start)
    own_start = comma_before.start if comma_before and comma_before.start >= line_start else start
    own_end = comma_after.end + 1 if comma_after and comma_after.start < line_end else end
    if text[line_start:own_start].strip() == "" and _LINE_TAIL.fullmatch(text, own_end, line_end):
        # The item owns its line: drop the line, and the comma that separated it if that sits elsewhere.
        edits = [_Edit(line_start, line_end, "")]
        if own_start == start and own_end == end:
            edits.append(_Edit(comma.start, comma.end + 1, ""))
        return edits
    if comma_after is not None:
        spaces = len(text[comma_after.end + 1 :]) - len(text[comma_after.end + 1 :].lstrip(" \t"))
        return [_Edit(start, comma_after.end + 1 + spaces, "")]
    return [_Edit(comma.start, end, "")]
