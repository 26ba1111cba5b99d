"""
Warehouse data types: the canonical spelling (:func:`normalize_type`), the family, and whether a change widens.

Types are compared after :func:`normalize_type`, so ``INT`` against ``NUMBER(38,0)`` is not drift. A family
(:func:`type_family`) drops length and precision, which a copy or a rename often loses.
"""

from __future__ import annotations

import re
from functools import lru_cache

# Snowflake's maximum lengths; a column declared at the maximum is the same as one declared without a length.
SNOWFLAKE_MAX_VARCHAR = 16777216
SNOWFLAKE_MAX_BINARY = 8388608
# The default fractional-seconds precision of TIME and TIMESTAMP_*.
SNOWFLAKE_DEFAULT_TIME_PRECISION = 9

_INTEGER_TYPES = frozenset({"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "BYTEINT"})
# FIXED is how SHOW COLUMNS names NUMBER.
_FIXED_TYPES = frozenset({"NUMBER", "DECIMAL", "NUMERIC", "FIXED"})
_VARCHAR_TYPES = frozenset(
    {
        "VARCHAR",
        "TEXT",
        "STRING",
        "CHAR VARYING",
        "CHARACTER VARYING",
        "NVARCHAR",
        "NVARCHAR2",
        "NCHAR VARYING",
    }
)
_CHAR_TYPES = frozenset({"CHAR", "CHARACTER", "NCHAR"})
_FLOAT_TYPES = frozenset({"FLOAT", "FLOAT4", "FLOAT8", "DOUBLE", "DOUBLE PRECISION", "REAL"})
_TIMESTAMP_TYPES = {
    "DATETIME": "TIMESTAMP_NTZ",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP_NTZ": "TIMESTAMP_NTZ",
    "TIMESTAMPNTZ": "TIMESTAMP_NTZ",
    "TIMESTAMP WITHOUT TIME ZONE": "TIMESTAMP_NTZ",
    "TIMESTAMP_TZ": "TIMESTAMP_TZ",
    "TIMESTAMPTZ": "TIMESTAMP_TZ",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP_TZ",
    "TIMESTAMP_LTZ": "TIMESTAMP_LTZ",
    "TIMESTAMPLTZ": "TIMESTAMP_LTZ",
    "TIMESTAMP WITH LOCAL TIME ZONE": "TIMESTAMP_LTZ",
    "TIME": "TIME",
}
_BOOLEAN_TYPES = frozenset({"BOOLEAN", "BOOL"})
_BINARY_TYPES = frozenset({"BINARY", "VARBINARY"})

_WHITESPACE = re.compile(r"\s+")
_SPACE_INSIDE_PARENS = re.compile(r"\s*\(\s*|\s*,\s*|\s*\)")
# A base name, optional integer arguments, and an optional suffix after them: TIMESTAMP(6) WITH TIME ZONE.
_TYPE_SHAPE = re.compile(
    r"^(?P<base>[A-Z][A-Z0-9_ ]*?)(?:\((?P<args>[0-9,]*)\)(?: (?P<suffix>[A-Z][A-Z_ ]*))?)?$",
)


def _clean_type_text(data_type: str) -> str:
    text = _WHITESPACE.sub(" ", data_type.strip().upper())
    return _SPACE_INSIDE_PARENS.sub(lambda match: match.group(0).strip(), text)


@lru_cache(maxsize=4096)
def normalize_type(data_type: str) -> str:
    """
    Give a type its canonical Snowflake spelling, so that types differing only in spelling compare equal.

    ``INT``, ``BIGINT``, ``NUMBER`` and ``DECIMAL(38,0)`` become ``NUMBER(38,0)``; ``TEXT``, ``STRING`` and
    ``VARCHAR(16777216)`` become ``VARCHAR``; ``DOUBLE`` and ``REAL`` become ``FLOAT``; ``DATETIME`` and
    ``TIMESTAMP(9)`` become ``TIMESTAMP_NTZ``. Unknown types pass through upper-cased, with whitespace collapsed.

    :param data_type: the type as a warehouse reported it, e.g. ``number(10, 2)`` or ``TIMESTAMP WITH TIME ZONE``.
    :return: the canonical spelling, e.g. ``NUMBER(10,2)`` or ``TIMESTAMP_TZ``.
    """
    text = _clean_type_text(data_type)
    shape = _TYPE_SHAPE.match(text)
    if shape is None:
        return text
    base = shape.group("base").strip()
    if shape.group("suffix"):
        base = f"{base} {shape.group('suffix').strip()}"
    raw_args = shape.group("args")
    if raw_args is None:
        args: list[int] = []
    elif raw_args and all(part.isdigit() for part in raw_args.split(",")):
        args = [int(part) for part in raw_args.split(",")]
    else:
        return text

    if base in _INTEGER_TYPES:
        return "NUMBER(38,0)"
    if base in _FIXED_TYPES:
        if len(args) > 2:
            return text
        precision = args[0] if args else 38
        scale = args[1] if len(args) == 2 else 0
        return f"NUMBER({precision},{scale})"
    if base in _VARCHAR_TYPES or base in _CHAR_TYPES:
        if len(args) > 1:
            return text
        length = args[0] if args else (SNOWFLAKE_MAX_VARCHAR if base in _VARCHAR_TYPES else 1)
        return "VARCHAR" if length == SNOWFLAKE_MAX_VARCHAR else f"VARCHAR({length})"
    if base in _FLOAT_TYPES:
        return "FLOAT"
    if base in _TIMESTAMP_TYPES:
        name = _TIMESTAMP_TYPES[base]
        if len(args) > 1:
            return text
        if not args or args[0] == SNOWFLAKE_DEFAULT_TIME_PRECISION:
            return name
        return f"{name}({args[0]})"
    if base in _BOOLEAN_TYPES:
        return "BOOLEAN"
    if base in _BINARY_TYPES:
        if len(args) > 1:
            return text
        if not args or args[0] == SNOWFLAKE_MAX_BINARY:
            return "BINARY"
        return f"BINARY({args[0]})"
    return text


_TYPE_ARGS = re.compile(r"^(?P<base>[A-Z_][A-Z0-9_ ]*?)(?:\((?P<args>[0-9,]+)\))?$")


def _type_parts(data_type: str) -> tuple[str, tuple[int, ...]]:
    """A normalised type split into its name and integer arguments: ``NUMBER(10,2)`` to ``("NUMBER", (10, 2))``."""
    normalized = normalize_type(data_type)
    shape = _TYPE_ARGS.match(normalized)
    if shape is None:
        return normalized, ()
    args = tuple(int(part) for part in (shape.group("args") or "").split(",") if part)
    return shape.group("base").strip(), args


def type_family(data_type: str) -> str:
    """
    The type without length, precision or scale: what a rename keeps even when a copy loses declared lengths.

    ``VARCHAR(16)``, ``TEXT`` and ``CHAR(3)`` are ``VARCHAR``; ``NUMBER(10,2)`` and ``INT`` are ``NUMBER``;
    ``TIMESTAMP_NTZ(3)`` is ``TIMESTAMP_NTZ``.

    :param data_type: the type as a warehouse reported it.
    :return: the family name.
    """
    return _type_parts(data_type)[0]


def is_widening(old_type: str, new_type: str) -> bool:
    """
    Whether a type change only widens the column, so every value the old type held still fits unchanged.

    True for ``VARCHAR(n)`` to ``VARCHAR(m)`` with ``m >= n`` or to unbounded ``VARCHAR``, ``NUMBER(p,s)`` to
    ``NUMBER(p',s)`` with ``p' >= p``, and ``BINARY(n)`` to a longer or unbounded ``BINARY``. A change of family,
    of scale, or a narrowing is not.

    :param old_type: the baseline type.
    :param new_type: the current type.
    :return: True when the change cannot break a reader.
    """
    old_base, old_args = _type_parts(old_type)
    new_base, new_args = _type_parts(new_type)
    if old_base != new_base:
        return False
    if old_base in ("VARCHAR", "BINARY"):
        maximum = SNOWFLAKE_MAX_VARCHAR if old_base == "VARCHAR" else SNOWFLAKE_MAX_BINARY
        old_length = old_args[0] if old_args else maximum
        new_length = new_args[0] if new_args else maximum
        return new_length >= old_length
    if old_base == "NUMBER" and len(old_args) == 2 and len(new_args) == 2:
        return new_args[1] == old_args[1] and new_args[0] >= old_args[0]
    return normalize_type(old_type) == normalize_type(new_type)
