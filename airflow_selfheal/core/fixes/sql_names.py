"""Column names in the form Snowflake stores them, and how to write them back into edited or new SQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from airflow_selfheal.core.identifiers import quote_identifier

if TYPE_CHECKING:
    from sqlglot import exp


_PLAIN_STORED = re.compile(r"[A-Z_][A-Z0-9_$]*")


def _stored(identifier: exp.Identifier) -> str:
    """Snowflake's stored form: unquoted names fold to upper case."""
    return str(identifier.this) if identifier.quoted else str(identifier.this).upper()


def _spell(stored: str, like: str) -> str:
    """Write a stored-form name in the style of an existing one: same quoting, same case for plain names."""
    if like.startswith('"') or not _PLAIN_STORED.fullmatch(stored):
        return quote_identifier(stored)
    return stored.lower() if like == like.lower() else stored


def _sql_name(stored: str) -> str:
    """A stored-form name for new SQL: bare when Snowflake would fold it to itself, else quoted."""
    return stored if _PLAIN_STORED.fullmatch(stored) else quote_identifier(stored)


def _mentions(text: str, stored: str) -> bool:
    """Whether a name occurs as a word anywhere in a file (a cheap pre-check, never used to edit)."""
    flags = 0 if not _PLAIN_STORED.fullmatch(stored) else re.IGNORECASE
    return re.search(rf"(?<![\w$]){re.escape(stored)}(?![\w$])", text, flags) is not None
