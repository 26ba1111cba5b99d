"""
Schema versions of the records stored on the artifacts root.

Every record a writer stores carries ``schema_version``: the version of its kind's shape that wrote it. A reader
checks it before using the record, so a worker running an older release refuses, with a clear message, a
record that a newer release wrote, instead of misreading it; and a record of 0.1.0, which had no version,
reads as version 1, the shape 0.1.0 wrote.

.. code-block:: python

    store.create_json(relative, stamp(incident.to_dict(), "incident"))
    incident = Incident.from_dict(check(store.read_json(relative), "incident", relative))

Versions count per kind (:data:`CURRENT`). When a kind's shape changes, its version goes up, and its reader
learns to read the older versions too.

Pure: no I/O and no other module of the package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The field that holds a record's schema version.
VERSION_FIELD = "schema_version"
#: The version of a record that has no :data:`VERSION_FIELD`: those of 0.1.0.
UNVERSIONED = 1
#: The newest version of each kind of record that this code writes and reads.
CURRENT: Mapping[str, int] = {
    "incident": 1,
    "occurrence": 1,
    "audit_entry": 1,
    "audit_claim": 1,
    "baseline_snapshot": 1,
    "baseline_acceptance": 1,
    # The page dedup marker of 0.1.0 (``notifications/<scope>/<key>.json``), read but no longer written.
    "page_marker": 1,
    "page_claim": 1,
    "page_outcome": 1,
}


class RecordVersionError(RuntimeError):
    """A record was written by a newer airflow-selfheal than this one; the message names it and the fix."""


def stamp(record: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """
    A copy of ``record`` with the current schema version of ``kind``.

    :param record: the record to store; it must not set :data:`VERSION_FIELD` itself.
    :param kind: one of :data:`CURRENT`.
    :return: the record and its ``schema_version``.
    :raises ValueError: for an unknown kind or a record that already has a version.
    """
    version = _current(kind)
    if VERSION_FIELD in record:
        raise ValueError(f"a {kind} record must not set {VERSION_FIELD!r} itself; stamp() sets it")
    return {**record, VERSION_FIELD: version}


def version_of(record: Any, kind: str, path: str) -> int:
    """
    The schema version of a stored record, checked.

    :param record: the record as read.
    :param kind: one of :data:`CURRENT`.
    :param path: where the record was read from, for messages.
    :return: its version; :data:`UNVERSIONED` when it has none.
    :raises ValueError: when the record is not an object or its version is not a positive integer.
    :raises RecordVersionError: when its version is newer than this code knows.
    """
    current = _current(kind)
    if not isinstance(record, Mapping):
        raise ValueError(f"{path}: a {kind} record must be a JSON object, got {type(record).__name__}")
    version: Any = record.get(VERSION_FIELD, UNVERSIONED)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"{path} has an invalid {VERSION_FIELD} {version!r:.40}: expected a positive integer"
        )
    if version > current:
        raise RecordVersionError(
            f"{path} was written with {kind} schema version {version} by a newer release; this "
            f"airflow-selfheal reads up to version {current}. Upgrade airflow-selfheal on this worker (every "
            "worker and scheduler should run the same release); the record was left as it is."
        )
    return int(version)


def check(record: Any, kind: str, path: str) -> dict[str, Any]:
    """
    The stored record as this code's readers expect it, after checking its schema version.

    A record without a version is one of 0.1.0, read as version 1. The version field itself is left out of the
    result, so readers see the same fields whichever release wrote the record.

    :param record: the record as read (``json.loads`` of the file).
    :param kind: one of :data:`CURRENT`.
    :param path: where the record was read from, for messages.
    :return: a copy of the record without :data:`VERSION_FIELD`.
    :raises ValueError: when the record is not an object or its version is malformed.
    :raises RecordVersionError: when a newer release wrote it.
    """
    version_of(record, kind, path)
    return {key: value for key, value in record.items() if key != VERSION_FIELD}


def _current(kind: str) -> int:
    try:
        return CURRENT[kind]
    except KeyError:
        raise ValueError(f"unknown record kind {kind!r}; known: {', '.join(sorted(CURRENT))}") from None
