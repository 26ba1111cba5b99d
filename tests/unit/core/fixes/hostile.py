"""
Input as an attacker could shape it (Hypothesis strategies): text with a Jinja delimiter, and paths past the floor.

Text as the warehouse could send it, clean or with a delimiter somewhere in it, for the floor tests and each
rule's test that text from outside (a drift event's column name or type, a failing row's value) is refused
instead of written. Paths a plan could name (``..``, ``./``, ``//``, backslashes, unicode, ``.git`` at any depth,
``Profiles.yml`` and other spellings, trailing slashes) and allow-lists a rules file could hold, for the floor
tests of the rules and the sandbox. It holds no tests itself.
"""

from __future__ import annotations

import os
import posixpath
import unicodedata
from typing import TYPE_CHECKING

from hypothesis import strategies as st

from airflow_selfheal.core.guards import (
    JINJA_DELIMITERS,
    UnsafePathError,
    check_relative_path,
    jinja_delimiters,
)
from airflow_selfheal.core.rules import PROTECTED_FILES, WRITABLE_ROOTS

if TYPE_CHECKING:
    from collections.abc import Sequence

#: Every delimiter dbt honours, with Jinja's whitespace control as a template author would write it.
DELIMITER_SPELLINGS = (
    *JINJA_DELIMITERS,
    "{{-",
    "{%-",
    "{%+",
    "{#-",
    "-}}",
    "-%}",
    "+%}",
    "-#}",
)
#: Whole payloads: what an attacker would actually put in a column name or a value.
PAYLOADS = (
    "{{ run_query('drop table raw.orders') }}",
    "{%- do run_query('grant all on database prod to role public') -%}",
    "{% set x = run_query('select 1') %}",
    "{# a comment that swallows the rest #}",
    "{{ env_var('SNOWFLAKE_PASSWORD') }}",
    "}}{{ log(this, info=True) }}{{",
)
# Characters near a delimiter, so clean text often looks like one without being one.
_NEAR = "{}%#-+ '\"\n`$._aZ9"


def _defuse(text: str) -> str:
    """Break every delimiter in ``text`` with a space, keeping the braces: ``{{`` becomes ``{ {``."""
    while True:
        found = jinja_delimiters(text)
        if not found:
            return text
        delimiter = next(iter(found))
        index = text.index(delimiter)
        text = f"{text[: index + 1]} {text[index + 1 :]}"


#: Text holding no Jinja delimiter: any unicode, and much of it braces, percents and hashes.
clean_text = st.one_of(st.text(max_size=40), st.text(alphabet=_NEAR, max_size=40)).map(_defuse)


@st.composite
def hostile_text(draw: st.DrawFn, base: st.SearchStrategy[str] = clean_text) -> str:
    """Clean text with a delimiter or a whole payload inserted at a random position."""
    text = draw(base)
    inserted = draw(st.sampled_from(DELIMITER_SPELLINGS) | st.sampled_from(PAYLOADS))
    position = draw(st.integers(min_value=0, max_value=len(text)))
    return text[:position] + inserted + text[position:]


#: An identifier-like name from the warehouse with a delimiter in it, e.g. ``CONTACT_{{EMAIL``.
hostile_name = hostile_text(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789 ", min_size=1, max_size=20)
)


_DANGEROUS = [
    "macros",
    "target",
    "logs",
    "dbt_packages",
    ".selfheal",
    ".SELFHEAL",
    ".git",
    ".GIT",
    ".Git",
    ".git.",
    ".git ",
    ".git::$INDEX_ALLOCATION",
    ".g\u200cit",
    "\ufeff.git",
    ".\uff47\uff49\uff54",  # fullwidth "git"
    "GIT~1",
    *PROTECTED_FILES,
    "Profiles.yml",
    "DBT_PROJECT.YML",
    "packages.yml.",
    "dependencies.YML",
    "Models",
]
# Mostly names a path really has, dangerous ones included; sometimes ".", ".." or "", or any unicode.
_SEGMENTS = st.one_of(
    *[st.sampled_from([*_DANGEROUS, "hooks", "config", "staging", "stg_orders.sql", "caf\u00e9.sql", "x"])]
    * 4,
    st.sampled_from(["..", ".", ""]),
    st.text(min_size=1, max_size=6),
)
_GLOBS = [
    "**",
    "*",
    "**/*",
    "*/**",
    "**/.git/**",
    "[!x]*/**",
    "?*/**",
    "[.-0]*",
    "*/[!a]*",
    "models/**",
    "tests/**",
    ".selfheal/**",
    "**/profiles.yml",
    "dbt_project.yml",  # exact: allowed
    "macros/x.sql",  # exact: allowed
    "models/.git/config",  # exact, but .git is never writable
    ".git/hooks/pre-commit",
]
#: Allow-lists as a rules file could hold them, mostly with ``**`` in them.
allow_lists = st.one_of(
    st.just(["**"]),
    st.lists(st.sampled_from(_GLOBS), min_size=1, max_size=4).map(lambda globs: ["**", *globs]),
    st.lists(st.sampled_from(_GLOBS), max_size=4),
)


@st.composite
def raw_paths(draw: st.DrawFn) -> str:
    """A path under a writable root or a dangerous top-level name, then spoiled a few ways (or not at all)."""
    root = draw(
        st.sampled_from(WRITABLE_ROOTS) | st.sampled_from(WRITABLE_ROOTS) | st.sampled_from(_DANGEROUS)
    )
    parts = [root, *draw(st.lists(_SEGMENTS, max_size=3)), draw(_SEGMENTS)]
    text = "/".join(parts)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        spoil = draw(st.sampled_from(["./", "/", "../", "models/../", "//", "\\", "/./", "/../", "trailing"]))
        if spoil == "trailing":
            text += draw(st.sampled_from(["/", "/.", "\\", "/.."]))
        elif spoil in ("./", "/", "../", "models/../"):
            text = spoil + text
        else:
            slashes = [index for index, char in enumerate(text) if char == "/"]
            if slashes:
                at = draw(st.sampled_from(slashes))
                text = text[:at] + spoil + text[at + 1 :]
    return text


#: git's list of characters HFS+ ignores in a name (utf8.c), and the spellings Windows folds onto ".git".
_HFS_IGNORED = {*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF}


def _as_file_systems_see_it(segment: str) -> str:
    """The name as macOS (NFD, ignored characters, any case) or Windows (trailing dots and spaces) reads it."""
    text = "".join(char for char in unicodedata.normalize("NFKD", segment) if ord(char) not in _HFS_IGNORED)
    return unicodedata.normalize("NFKC", text).casefold().split(":", 1)[0].rstrip(". ")


def escape(path: str, allowed: Sequence[str]) -> str | None:
    """How a path the floor let through escapes it, or None; an independent statement of the floor."""
    try:
        check_relative_path(path)
    except UnsafePathError as exc:
        return f"not a plain relative path: {exc}"
    if posixpath.normpath(path) != path or os.path.isabs(path):
        return "resolves elsewhere"
    seen = [_as_file_systems_see_it(part) for part in path.split("/")]
    if ".git" in seen or "git~1" in seen:
        return "inside .git"
    if path in allowed and not set("*?[]") & set(path):
        return None  # named exactly in the rules file
    if seen[-1] in PROTECTED_FILES:
        return "a protected file"
    if ".selfheal" in seen[:-1]:
        return "inside .selfheal"
    if len(seen) < 2 or path.split("/")[0] not in WRITABLE_ROOTS:
        return "outside the writable roots"
    return None
