"""Incidents on the artifacts root, and the ``incidents`` and ``triage`` commands of the CLI.

Layout under ``<artifacts_root>/incidents/<incident_id>/``::

    incident.json                                        the first occurrence's incident, created exclusively
    occurrences/<run_id>__<task_id>__<try>.json          one record per failed try that reported it

The incident id comes from the fingerprint, so a retry, a parallel task or a re-run that fails the same way adds
an occurrence to the same incident instead of a new incident. Nothing is overwritten: the first writer of
``incident.json`` wins, and an occurrence already recorded (a callback run twice for one try) is kept as it is.
A record that cannot be read raises :class:`~airflow_selfheal.hooks.artifacts.ArtifactCorruptError` naming the file.

Both records carry a ``schema_version`` (:mod:`airflow_selfheal.core.schema`, kinds ``incident`` and
``occurrence``); those of 0.1.0 have none and read as version 1, and one written by a newer release is refused
with :class:`~airflow_selfheal.core.schema.RecordVersionError`.

The CLI functions take an ``argparse.Namespace``; :func:`add_incident_commands` registers them:

.. code-block:: console

    airflow-selfheal incidents list [--limit N] [--json]
    airflow-selfheal incidents show inc-3f2a9c0d4e5b6a71 [--json]
    airflow-selfheal triage target/run_results.json [--drift-report drift.json] [--json]
    airflow-selfheal triage dbt.log
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.incident import Incident
from airflow_selfheal.core.schema import check, stamp
from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore

if TYPE_CHECKING:
    from collections.abc import Mapping

INCIDENTS_FOLDER = "incidents"
# dbt's statuses for a node that did not succeed; ``warn`` passed and ``skipped`` never ran.
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
# The triage command reads at most this much of each end of a log file: the classifier looks no further.
LOG_WINDOW_BYTES = 20_000

_INCIDENT_ID = re.compile(r"^inc-[0-9a-f]{16}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class IncidentNotFoundError(LookupError):
    """No incident with that id is stored."""


def safe_segment(value: object) -> str:
    """
    One path segment from any value: unsafe characters become ``_`` and a short hash keeps it unique.

    Run ids hold ``:`` and ``+`` (``manual__2026-01-01T00:00:00+00:00``), which some object stores and shells
    handle badly. When a character had to be replaced, the first 8 hex digits of the value's sha256 are
    appended so that two values differing only in such characters stay apart.

    :param value: a run id, task id, DAG id...; None becomes ``unknown``.
    :return: letters, digits, ``_``, ``.`` and ``-`` only; never empty, ``.`` or ``..``.
    """
    text = "unknown" if value is None else str(value)
    cleaned = _UNSAFE.sub("_", text)
    if cleaned != text or cleaned in ("", ".", ".."):
        cleaned = f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return cleaned


def occurrence_name(incident: Incident) -> str:
    """
    The occurrence's file name: ``<run_id>__<task_id>__<try>.json`` (``__m<map_index>`` before the try if mapped).

    :param incident: the incident as built for this failed try.
    :return: the file name, made of :func:`safe_segment` parts.
    """
    parts = [safe_segment(incident.run_id), safe_segment(incident.task_id)]
    if incident.map_index != -1:
        parts.append(f"m{incident.map_index}")
    parts.append(safe_segment(incident.try_number))
    return "__".join(parts) + ".json"


def occurrence_record(incident: Incident, **extra: Any) -> dict[str, Any]:
    """
    What one failed try contributes to an incident: where and when it failed, and what evidence was missing.

    :param incident: the incident as built for this failed try.
    :param extra: more JSON-serialisable facts to record, e.g. ``dispatch`` or ``elapsed_seconds``.
    :return: the record.
    """
    return {
        "incident_id": incident.incident_id,
        "fingerprint": incident.fingerprint,
        "pipeline": incident.pipeline,
        "run_id": incident.run_id,
        "task_id": incident.task_id,
        "map_index": incident.map_index,
        "try_number": incident.try_number,
        "failed_at": incident.failed_at,
        "recorded_at": datetime.now(timezone.utc).isoformat(),
        "environment": incident.environment,
        "missing": list(incident.missing),
        **extra,
    }


class IncidentStore:
    """
    Incidents and their occurrences under the artifacts root, readable from any worker.

    .. code-block:: python

        incidents = IncidentStore()
        new = incidents.save(incident)  # False when this fingerprint was seen before
        for occurrence in incidents.occurrences(incident.incident_id):
            print(occurrence["run_id"], occurrence["try_number"])

    :param store: the artifact store; defaults to the configured artifacts root.
    """

    def __init__(self, store: ArtifactStore | None = None) -> None:
        self.store = store or ArtifactStore()

    def incident_path(self, incident_id: str) -> str:
        """
        The incident record's path relative to the artifacts root.

        :param incident_id: ``inc-`` and 16 hex digits.
        :return: ``incidents/<incident_id>/incident.json``.
        :raises IncidentNotFoundError: for a malformed id, which no stored incident can have.
        """
        if not isinstance(incident_id, str) or not _INCIDENT_ID.fullmatch(incident_id):
            raise IncidentNotFoundError(
                f"{incident_id!r} is not an incident id (inc- and 16 hex digits); "
                "list them with `airflow-selfheal incidents list`"
            )
        return f"{INCIDENTS_FOLDER}/{incident_id}/incident.json"

    def save(self, incident: Incident, occurrence: Mapping[str, Any] | None = None) -> bool:
        """
        Record an occurrence of ``incident``, creating the incident on its first occurrence.

        :param incident: the incident as built for this failed try.
        :param occurrence: the occurrence record; defaults to :func:`occurrence_record`.
        :return: True when this call created the incident, False when it already existed.
        """
        created = self.store.create_json(
            self.incident_path(incident.incident_id), stamp(incident.to_dict(), "incident")
        )
        record = dict(occurrence) if occurrence is not None else occurrence_record(incident)
        name = occurrence_name(incident)
        self.store.create_json(
            f"{INCIDENTS_FOLDER}/{incident.incident_id}/occurrences/{name}", stamp(record, "occurrence")
        )
        return created

    def get(self, incident_id: str) -> Incident:
        """
        A stored incident.

        :param incident_id: ``inc-`` and 16 hex digits.
        :return: the incident as its first occurrence recorded it.
        :raises IncidentNotFoundError: when no such incident is stored.
        :raises ArtifactCorruptError: when its record is not valid JSON or not an incident, naming the file.
        :raises RecordVersionError: when a newer airflow-selfheal wrote it.
        """
        relative = self.incident_path(incident_id)
        if not self.store.exists(relative):
            if self.store.is_folder(relative):
                raise self.store.folder_in_place(relative)
            raise IncidentNotFoundError(
                f"no incident {incident_id} under {self.store.root}; "
                "list them with `airflow-selfheal incidents list`"
            )
        return self._read_incident(relative)

    def occurrences(self, incident_id: str) -> list[dict[str, Any]]:
        """
        The occurrences of one incident, oldest first.

        :param incident_id: ``inc-`` and 16 hex digits.
        :return: the occurrence records; empty for an unknown incident.
        :raises ArtifactCorruptError: when a record is unreadable, naming the file.
        """
        self.incident_path(incident_id)  # validates the id
        folder = f"{INCIDENTS_FOLDER}/{incident_id}/occurrences"
        records = []
        for name in self.store.list(folder):
            relative = f"{folder}/{name}"
            try:
                record = check(self.store.read_json(relative), "occurrence", self.store.url(relative))
            except ValueError as exc:
                raise _not_a_record(self.store, relative, f"an occurrence object ({exc})") from exc
            records.append(record)
        return sorted(records, key=lambda record: (str(record.get("failed_at")), str(record.get("run_id"))))

    def _read_incident(self, relative: str) -> Incident:
        data = self.store.read_json(relative)
        try:
            return Incident.from_dict(check(data, "incident", self.store.url(relative)))
        except ValueError as exc:
            raise _not_a_record(self.store, relative, f"an incident ({exc})") from exc

    def list(self) -> list[Incident]:
        """
        Every stored incident, newest first (by the time of its first failure, then by id).

        :return: the incidents.
        :raises ArtifactCorruptError: when a record is unreadable, naming the file.
        """
        incidents = []
        for name in self.store.folders(INCIDENTS_FOLDER):
            if not _INCIDENT_ID.fullmatch(name):
                continue
            relative = self.incident_path(name)
            # A folder without its record is a writer that has not finished yet.
            if self.store.exists(relative):
                incidents.append(self._read_incident(relative))
        return sorted(incidents, key=lambda item: (item.failed_at, item.incident_id), reverse=True)


def _not_a_record(store: ArtifactStore, relative: str, expected: str) -> ArtifactCorruptError:
    return store.corrupt(relative, f"is not {expected}")
