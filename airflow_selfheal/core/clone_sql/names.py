"""
Object names: dotted names split into stored-form parts, and the clone names an incident gets.

A clone name carries the source database, the incident and the creation time, so a TTL sweep can find orphaned
clones and know their age from the name alone; :func:`parse_clone_name` is the guard against dropping prod.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeAlias

from airflow_selfheal.core.identifiers import normalize_identifier, quote_identifier

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
