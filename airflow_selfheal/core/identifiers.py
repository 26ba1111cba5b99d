"""Snowflake identifiers: normalise and quote them strictly, never paste raw names into SQL."""

from __future__ import annotations

import re

_UNQUOTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")


def normalize_identifier(name: str) -> str:
    """Resolve a name as Snowflake does: unquoted names fold to upper case, quoted ones keep their case.

    :param name: ``orders``, ``ORDERS`` or ``"MixedCase"``.
    :return: the stored form, e.g. ``ORDERS`` or ``MixedCase``.
    """
    name = name.strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    if not _UNQUOTED.match(name):
        raise ValueError(f"{name!r} is not a valid unquoted Snowflake identifier; quote it to keep it as is")
    return name.upper()


def quote_identifier(name: str) -> str:
    """Quote a stored-form identifier (see :func:`normalize_identifier`) for SQL text."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def qualified(*parts: str) -> str:
    """``"DB"."SCHEMA"."TABLE"`` from stored-form parts."""
    return ".".join(quote_identifier(part) for part in parts)
