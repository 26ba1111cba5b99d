"""
Jinja masking: a file's Jinja becomes placeholders that sqlglot parses, and comes back exactly as written.

``{{ ... }}`` becomes an identifier placeholder (``{{ config(...) }}`` a comment), and ``{% if %}``,
``{% set x = ... %}`` and ``{# ... #}`` become comments; loops, macros and other blocks make the rule escalate,
because they generate SQL the parser cannot see. A macro call that names a column only as a string argument
(``{{ cents_to_dollars('amount_cents') }}``) is recognised, for the rules to edit that argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.fixes.wording import _one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

_PLACEHOLDER_PREFIX = "__selfheal_jinja_"
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_JINJA_TAG = re.compile(r"\{%-?\s*(\w+)")
_SOURCE_CALL = re.compile(
    r"""\{\{-?\s*source\(\s*(['"])([^'"]+)\1\s*,\s*(['"])([^'"]+)\3\s*\)\s*-?\}\}""", re.DOTALL
)
_CONFIG_CALL = re.compile(r"\{\{-?\s*config\s*\(", re.DOTALL)
# Tags that render no SQL of their own, or select between branches that are each plain SQL.
_SAFE_TAGS = frozenset({"if", "elif", "else", "endif", "set", "do"})
# Macros that expand to the columns of a relation; with one in a select list, the column list is unknowable.
_EXPANDING_MACRO = re.compile(r"\bstar\s*\(|\bsource\s*\(|\bref\s*\(|\*")


@dataclass(frozen=True)
class _Masked:
    """A file's SQL with its Jinja replaced by placeholders that sqlglot parses, and the way back."""

    path: str
    text: str
    segments: dict[str, str]  # placeholder text -> the Jinja it stands for
    sources: dict[str, tuple[str, str]]  # identifier placeholder (lower case) -> (source name, table name)
    expressions: dict[str, str]  # identifier placeholder (lower case) -> Jinja expression

    def unmask(self, text: str, overrides: Mapping[str, str] | None = None) -> str:
        for placeholder, jinja in self.segments.items():
            if text.count(placeholder) != 1:
                raise _Escalate(f"rewriting {self.path} would lose or repeat the Jinja {_one_line(jinja)!r}")
            text = text.replace(placeholder, (overrides or {}).get(placeholder, jinja))
        return text

    def restore(self, text: str) -> str:
        """Put back the Jinja of any placeholders in a fragment built from this file's SQL."""
        for placeholder, jinja in self.segments.items():
            text = text.replace(placeholder, jinja)
        return text

    def spans(self) -> list[tuple[int, int]]:
        spans = []
        for placeholder in self.segments:
            start = self.text.find(placeholder)
            spans.append((start, start + len(placeholder)))
        return spans


def _mask(text: str, path: str) -> _Masked:
    if _PLACEHOLDER_PREFIX in text:
        raise _Escalate(f"{path} already contains {_PLACEHOLDER_PREFIX}; it cannot be masked safely")
    segments: dict[str, str] = {}
    sources: dict[str, tuple[str, str]] = {}
    expressions: dict[str, str] = {}
    out: list[str] = []
    position = 0
    for number, match in enumerate(_JINJA.finditer(text)):
        jinja = match.group(0)
        name = f"{_PLACEHOLDER_PREFIX}{number}__"
        if jinja.startswith("{%"):
            tag_match = _JINJA_TAG.match(jinja)
            tag = tag_match.group(1).lower() if tag_match else ""
            if tag not in _SAFE_TAGS or (tag == "set" and "=" not in jinja):
                raise _Escalate(
                    f"{path} uses the Jinja block {{% {tag or '?'} %}}, which generates SQL the rewriter "
                    "cannot see; a person must change it"
                )
            placeholder = f"/*{name}*/"
        elif jinja.startswith("{#") or _CONFIG_CALL.match(jinja):
            placeholder = f"/*{name}*/"
        else:
            placeholder = name
            expressions[name.lower()] = jinja
            source = _SOURCE_CALL.fullmatch(jinja)
            if source is not None:
                sources[name.lower()] = (source.group(2), source.group(4))
        segments[placeholder] = jinja
        out.append(text[position : match.start()])
        out.append(placeholder)
        position = match.end()
    out.append(text[position:])
    masked = "".join(out)
    if any(marker in masked for marker in ("{{", "}}", "{%", "%}", "{#", "#}")):
        raise _Escalate(f"{path} has Jinja delimiters that do not pair up; it cannot be masked safely")
    return _Masked(path, masked, segments, sources, expressions)


_MACRO_CALL = re.compile(r"\{\{-?\s*(?P<name>[A-Za-z_][\w.]*)\s*\((?P<args>[^{}]*)\)\s*-?\}\}", re.DOTALL)
_STRING_ARGUMENT = re.compile(r"(?P<quote>['\"])(?P<value>[A-Za-z_][\w$]*)(?P=quote)")
# Calls whose string arguments name relations or settings, never a column of the current query.
_NOT_COLUMN_MACROS = frozenset({"source", "ref", "config", "var", "env_var", "this", "is_incremental"})


def _macro_column_arguments(jinja: str, stored: str) -> list[tuple[int, int]] | None:
    """
    The ``[start, end)`` spans (inside ``jinja``) of the string arguments naming the column, e.g. ``'amount_cents'``.

    :return: None unless ``jinja`` is one macro call whose every mention of the column is such an argument.
    """
    call = _MACRO_CALL.fullmatch(jinja.strip())
    if call is None or call.group("name").rsplit(".", 1)[-1].lower() in _NOT_COLUMN_MACROS:
        return None
    # Only a flat argument list: a nested call or a list (``star(source(...), except=[...])``) may mean anything.
    if any(marker in call.group("args") for marker in "([{") or _EXPANDING_MACRO.search(jinja):
        return None
    offset = jinja.index(jinja.strip()) + call.start("args")
    spans = [
        (offset + found.start("value"), offset + found.end("value"))
        for found in _STRING_ARGUMENT.finditer(call.group("args"))
        if found.group("value").upper() == stored.upper()
    ]
    mentions = len(re.findall(rf"(?<![\w$]){re.escape(stored)}(?![\w$])", jinja, re.IGNORECASE))
    return spans if spans and len(spans) == mentions else None
