"""Versioned schema baselines on the artifacts root (shared storage, so any worker sees them).

Layout under ``<artifacts_root>/baselines/<name>/``::

    snapshots/<version>.json    every captured snapshot, immutable
    accepted/<version>.json     one record per acceptance: which snapshot, who, why, when

The baseline is the snapshot named by the newest acceptance record. Nothing is overwritten: concurrent
writers create distinct, time-ordered names (each created exclusively, a new name drawn on the rare
collision), so the full history stays readable and an acceptance can be rolled back by accepting an older
snapshot again. Both records carry a ``schema_version`` (:mod:`airflow_selfheal.core.schema`, kinds
``baseline_snapshot`` and ``baseline_acceptance``); those of 0.1.0 have none and read as version 1.

Why files and not a table in the warehouse: the baseline must be readable when the warehouse is the thing
that is failing (permissions, suspended warehouse), its history must survive a dropped ops schema, and the
same artifacts root already carries every other repair artifact between workers.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.schema import check, stamp
from airflow_selfheal.hooks.artifacts import ArtifactStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_selfheal.core.drift import SchemaSnapshot

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
#: What every acceptance record holds (as text); ``drift history`` prints them all.
_ACCEPTANCE_FIELDS = ("version", "accepted_by", "accepted_at", "reason")
#: Fresh names tried when a new record's name is taken (two writers in the same microsecond, same random part).
MAX_NAME_ATTEMPTS = 5


class BaselineError(RuntimeError):
    """The baseline history is unusable; the message names the record and the recovery command."""


def new_version(content_hash: str, now: datetime | None = None) -> str:
    """A sortable, collision-free version id: ``<UTC time>-<content hash prefix>-<random>``."""
    moment = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{moment}-{content_hash[:8]}-{uuid.uuid4().hex[:6]}"


class BaselineStore:
    """
    The history of one named baseline.

    .. code-block:: python

        baselines = BaselineStore("shop_raw")
        version = baselines.record(snapshot.to_dict(), snapshot.content_hash)
        baselines.accept(version, accepted_by="dag shop_pipeline", reason="first snapshot")

    :param name: the baseline's name, e.g. the pipeline or source group (letters, digits, ``_.-``).
    :param store: artifact store; defaults to the configured artifacts root.
    """

    def __init__(self, name: str, store: ArtifactStore | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(
                f"baseline name {name!r} must be 1-100 letters, digits, '_', '.' or '-': pass the name the "
                "baseline was recorded under (`airflow-selfheal drift snapshot NAME`)"
            )
        self.name = name
        self.store = store or ArtifactStore()
        self.prefix = f"baselines/{name}"

    def record(self, snapshot: dict[str, Any], content_hash: str) -> str:
        """Store a snapshot (not yet accepted) and return its version id."""
        record = stamp(snapshot, "baseline_snapshot")
        return self._create("snapshots", lambda: new_version(content_hash), record)

    def _create(self, folder: str, name: Callable[[], str], record: dict[str, Any]) -> str:
        for _ in range(MAX_NAME_ATTEMPTS):
            version = name()
            if self.store.create_json(f"{self.prefix}/{folder}/{version}.json", record):
                return version
        raise BaselineError(
            f"could not find a free name in {self.store.url(f'{self.prefix}/{folder}')} after "
            f"{MAX_NAME_ATTEMPTS} tries; the store's exclusive create is not working"
        )

    def snapshot(self, version: str) -> dict[str, Any]:
        """A stored snapshot by version id."""
        if not isinstance(version, str) or not _NAME.match(version):
            raise BaselineError(
                f"{version!r} is not a version id (letters, digits, '_', '.' and '-'). "
                f"List them with `airflow-selfheal drift history {self.name}`."
            )
        relative = f"{self.prefix}/snapshots/{version}.json"
        if not self.store.exists(relative):
            raise BaselineError(
                f"baseline {self.name!r} has no snapshot {version}. "
                f"List them with `airflow-selfheal drift history {self.name}`."
            )
        data = self.store.read_json(relative)
        try:
            return check(data, "baseline_snapshot", self.store.url(relative))
        except ValueError as exc:
            raise BaselineError(
                f"snapshot {relative} is not an object ({exc}). Recovery: `airflow-selfheal artifacts "
                f"quarantine {relative}`, then accept another with `airflow-selfheal drift accept {self.name} "
                "<version>`."
            ) from exc

    def accept(self, version: str, *, accepted_by: str, reason: str) -> dict[str, Any]:
        """Make ``version`` the baseline; the previous one stays in the history."""
        self.snapshot(version)  # refuse to accept what cannot be read
        record = {
            "version": version,
            "accepted_by": accepted_by,
            "reason": reason,
            "accepted_at": datetime.now(timezone.utc).isoformat(),
        }
        self._create("accepted", lambda: new_version(version), stamp(record, "baseline_acceptance"))
        return record

    def history(self) -> list[dict[str, Any]]:
        """
        Acceptance records, oldest first.

        :raises BaselineError: naming a malformed record (not an object, or without its ``version``,
            ``accepted_by``, ``accepted_at`` or ``reason`` text) and the commands that recover.
        """
        records = []
        for name in self.store.list(f"{self.prefix}/accepted"):
            relative = f"{self.prefix}/accepted/{name}"
            data = self.store.read_json(relative)
            try:
                record = check(data, "baseline_acceptance", self.store.url(relative))
            except ValueError:
                record = {}
            missing = [field for field in _ACCEPTANCE_FIELDS if not isinstance(record.get(field), str)]
            if missing:
                problem = (
                    f"its {', '.join(map(repr, missing))} {'is' if len(missing) == 1 else 'are'} missing or not text"
                    if isinstance(data, dict)
                    else f"it is a JSON {type(data).__name__}, not an object"
                )
                raise BaselineError(
                    f"acceptance record {relative} is malformed ({problem}). Recovery: `airflow-selfheal "
                    f"artifacts quarantine {relative}`, then re-accept with `airflow-selfheal drift accept "
                    f"{self.name} <version>`."
                )
            records.append(record)
        return records

    def current(self) -> tuple[str, dict[str, Any]] | None:
        """The accepted baseline as ``(version, snapshot)``, or None if none was ever accepted."""
        history = self.history()
        if not history:
            return None
        version = str(history[-1]["version"])
        return version, self.snapshot(version)

    def current_snapshot(self) -> tuple[str, SchemaSnapshot] | None:
        """
        The accepted baseline as ``(version, SchemaSnapshot)``, or None if none was ever accepted.

        :raises ArtifactCorruptError: naming the snapshot record when it is not a schema snapshot, with the
            commands that recover.
        """
        from airflow_selfheal.core.drift import SchemaSnapshot

        current = self.current()
        if current is None:
            return None
        version, data = current
        try:
            return version, SchemaSnapshot.from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            problem = f"its {exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)
            raise self.store.corrupt(
                f"{self.prefix}/snapshots/{version}.json",
                f"is not a schema snapshot ({problem})",
                then=f"accept another version with `airflow-selfheal drift accept {self.name} <version>`",
            ) from exc

    def versions(self) -> list[str]:
        """Every recorded snapshot version, oldest first."""
        return [name.removesuffix(".json") for name in self.store.list(f"{self.prefix}/snapshots")]
