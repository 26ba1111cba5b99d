"""Incidents on the artifacts root, and the ``incidents`` and ``triage`` commands of the CLI.

Layout under ``<artifacts_root>/incidents/<incident_id>/``::

    incident.json                                        the first occurrence's incident, created exclusively
    occurrences/<run_id>__<task_id>__<try>.json          one record per failed try that reported it

The incident id comes from the fingerprint, so a retry, a parallel task or a re-run that fails the same way adds
an occurrence to the same incident instead of a new incident. Nothing is overwritten: the first writer of
``incident.json`` wins, and an occurrence already recorded (a callback run twice for one try) is kept as it is.
A record that cannot be read raises :class:`~airflow_selfheal.storage.ArtifactCorruptError` naming the file.

The CLI functions take an ``argparse.Namespace``; :func:`add_incident_commands` registers them:

.. code-block:: console

    airflow-selfheal incidents list [--limit N] [--json]
    airflow-selfheal incidents show inc-3f2a9c0d4e5b6a71 [--json]
    airflow-selfheal triage target/run_results.json [--drift-report drift.json] [--json]
    airflow-selfheal triage dbt.log
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.incident import Incident
from airflow_selfheal.storage import ArtifactCorruptError, ArtifactStore

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

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
        created = self.store.create_json(self.incident_path(incident.incident_id), incident.to_dict())
        record = dict(occurrence) if occurrence is not None else occurrence_record(incident)
        name = occurrence_name(incident)
        self.store.create_json(f"{INCIDENTS_FOLDER}/{incident.incident_id}/occurrences/{name}", record)
        return created

    def get(self, incident_id: str) -> Incident:
        """
        A stored incident.

        :param incident_id: ``inc-`` and 16 hex digits.
        :return: the incident as its first occurrence recorded it.
        :raises IncidentNotFoundError: when no such incident is stored.
        :raises ArtifactCorruptError: when its record is not valid JSON or not an incident, naming the file.
        """
        relative = self.incident_path(incident_id)
        if not self.store.exists(relative):
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
            record = self.store.read_json(relative)
            if not isinstance(record, dict):
                raise _not_a_record(self.store, relative, "an occurrence object")
            records.append(record)
        return sorted(records, key=lambda record: (str(record.get("failed_at")), str(record.get("run_id"))))

    def _read_incident(self, relative: str) -> Incident:
        data = self.store.read_json(relative)
        try:
            return Incident.from_dict(data)
        except ValueError as exc:
            raise _not_a_record(self.store, relative, f"an incident ({exc})") from exc

    def list(self) -> list[Incident]:
        """
        Every stored incident, newest first (by the time of its first failure, then by id).

        :return: the incidents.
        :raises ArtifactCorruptError: when a record is unreadable, naming the file.
        """
        folder = self.store.path(INCIDENTS_FOLDER)
        if not folder.exists():
            return []
        incidents = []
        for child in folder.iterdir():
            if not _INCIDENT_ID.fullmatch(child.name):
                continue
            relative = self.incident_path(child.name)
            # A folder without its record is a writer that has not finished yet.
            if self.store.exists(relative):
                incidents.append(self._read_incident(relative))
        return sorted(incidents, key=lambda item: (item.failed_at, item.incident_id), reverse=True)


def _not_a_record(store: ArtifactStore, relative: str, expected: str) -> ArtifactCorruptError:
    return ArtifactCorruptError(
        f"{store.path(relative)} is not {expected}. Nothing was changed. Inspect it, then move it aside "
        f"(`airflow-selfheal artifacts quarantine {relative}`) to continue without it."
    )


# ---------------------------------------------------------------------------------------------------------------
# Offline triage of dbt artifacts and logs
# ---------------------------------------------------------------------------------------------------------------


def triage_run_results(
    run_results: Mapping[str, Any], *, drift_events: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """
    Classify every failed result of a ``run_results.json``.

    :param run_results: the parsed file.
    :param drift_events: drift event dicts to correlate with the errors.
    :return: per failed result, ``unique_id`` and ``status`` followed by the triage's ``to_dict()``.
    :raises ValueError: when it has no ``results`` list, i.e. it is not a ``run_results.json``.
    """
    from airflow_selfheal.core.triage import classify

    results = run_results.get("results")
    if not isinstance(results, list):
        raise ValueError("not a dbt run_results.json: no 'results' list")
    classified = []
    for result in results:
        if not isinstance(result, dict) or str(result.get("status")).lower() not in FAILED_STATUSES:
            continue
        unique_id = str(result.get("unique_id") or "")
        resource_type = unique_id.split(".", 1)[0] or None
        message = str(result.get("message") or "")
        if resource_type == "test":
            # dbt's message for a failed test is only "Got 3 results, ..."; its log names the test first.
            message = f"Failure in test {unique_id.split('.')[2]}\n{message}"
        triage = classify(
            message, resource_type=resource_type, status=str(result.get("status")), drift_events=drift_events
        )
        classified.append({"unique_id": unique_id, "status": result.get("status"), **triage.to_dict()})
    return classified


def triage_file(path: str | Path, *, drift_events: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """
    Classify a ``run_results.json`` (each failed result) or a log file (as one failure).

    A file is read as run results when it parses as a JSON object with a ``results`` list; anything else is a
    log, of which only the first and last :data:`LOG_WINDOW_BYTES` bytes are read.

    :param path: the file.
    :param drift_events: drift event dicts to correlate with the errors.
    :return: ``file``, ``kind`` (``run_results`` or ``log``) and ``results`` (see :func:`triage_run_results`;
        a log's one result has ``unique_id`` and ``status`` None).
    :raises ValueError: when the file cannot be read, or is a ``.json`` file that is not valid JSON.
    """
    from airflow_selfheal.core.triage import classify

    location = Path(path)
    try:
        size = location.stat().st_size
        with location.open("rb") as handle:
            if size <= 2 * LOG_WINDOW_BYTES or location.suffix == ".json":
                raw = handle.read()
            else:
                head = handle.read(LOG_WINDOW_BYTES)
                handle.seek(size - LOG_WINDOW_BYTES)
                middle = f"\n…[{size - 2 * LOG_WINDOW_BYTES} bytes not read]…\n".encode()
                raw = head + middle + handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read {location}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    parsed: Any = None
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            if location.suffix == ".json":
                raise ValueError(f"{location} is not valid JSON ({exc})") from exc
    if isinstance(parsed, dict) and "results" in parsed:
        return {
            "file": str(location),
            "kind": "run_results",
            "results": triage_run_results(parsed, drift_events=drift_events),
        }
    triage = classify(text, drift_events=drift_events)
    return {
        "file": str(location),
        "kind": "log",
        "results": [{"unique_id": None, "status": None, **triage.to_dict()}],
    }


def _drift_events(path: str | None) -> list[dict[str, Any]]:
    if not path:
        return []
    try:
        report = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read the drift report {path}: {exc}") from exc
    events = report.get("events") if isinstance(report, dict) else report
    if not isinstance(events, list):
        raise ValueError(f"{path} has no 'events' list; pass a drift report (`drift check --json` output)")
    return [event for event in events if isinstance(event, dict)]


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    _emit(json.dumps(data, indent=2, sort_keys=True, default=str))


def _subject(incident: Incident) -> str:
    if not incident.nodes:
        return f"task {incident.task_id or '?'}"
    more = f" (+{len(incident.nodes) - 1})" if len(incident.nodes) > 1 else ""
    return incident.nodes[0].unique_id + more


def _failure_class(incident: Incident) -> str:
    return str((incident.triage or {}).get("failure_class", "untriaged"))


def _emit(text: str) -> None:
    """Print a command result on the CLI's result stream (Airflow's logging goes to stderr)."""
    from airflow_selfheal.cli import emit

    emit(text)


def cmd_incidents_list(args: argparse.Namespace) -> int:
    """
    Print the stored incidents, newest first.

    :param args: ``limit`` (int or None) and ``json`` (bool); both optional.
    :return: 0.
    """
    incidents = IncidentStore()
    found = incidents.list()
    limit = getattr(args, "limit", None)
    if limit is not None:
        found = found[: max(0, int(limit))]
    counts = {incident.incident_id: len(incidents.occurrences(incident.incident_id)) for incident in found}
    if getattr(args, "json", False):
        _print_json(
            [
                {
                    "incident_id": incident.incident_id,
                    "failed_at": incident.failed_at,
                    "pipeline": incident.pipeline,
                    "nodes": [node.unique_id for node in incident.nodes],
                    "failure_class": _failure_class(incident),
                    "occurrences": counts[incident.incident_id],
                    "environment": incident.environment,
                }
                for incident in found
            ]
        )
        return 0
    if not found:
        _emit(f"no incidents under {incidents.store.path(INCIDENTS_FOLDER)}")
        return 0
    for incident in found:
        _emit(
            f"{incident.incident_id}  {incident.failed_at}  {incident.environment}  {incident.pipeline}  "
            f"{_subject(incident)}  {_failure_class(incident)}  x{counts[incident.incident_id]}"
        )
    return 0


def cmd_incidents_show(args: argparse.Namespace) -> int:
    """
    Print one incident with its triage and occurrences.

    :param args: ``incident_id`` and ``json`` (bool, optional).
    :return: 0.
    :raises IncidentNotFoundError: for an unknown id.
    """
    incidents = IncidentStore()
    incident = incidents.get(args.incident_id)
    occurrences = incidents.occurrences(incident.incident_id)
    if getattr(args, "json", False):
        _print_json({"incident": incident.to_dict(), "occurrences": occurrences})
        return 0
    triage = dict(incident.triage or {})
    root_cause = triage.get("root_cause") or {}
    lines = [
        f"{incident.incident_id}  ({incident.environment})",
        f"  pipeline:    {incident.pipeline}",
        f"  first run:   {incident.run_id}  task {incident.task_id}  try {incident.try_number}",
        f"  failed at:   {incident.failed_at}",
        f"  nodes:       {', '.join(node.unique_id for node in incident.nodes) or 'unknown'}",
        f"  class:       {triage.get('failure_class', 'untriaged')}",
        f"  action:      {triage.get('action', '-')}",
        f"  summary:     {triage.get('summary', '-')}",
    ]
    if root_cause:
        lines.append(f"  root cause:  {root_cause.get('message')}")
    lines += [
        f"  git sha:     {incident.git_sha or 'unknown'}",
        f"  fingerprint: {incident.fingerprint}",
    ]
    lines += [f"  missing:     {note}" for note in incident.missing]
    lines.append(f"  occurrences: {len(occurrences)}")
    lines += [
        f"    - {record.get('failed_at')}  {record.get('run_id')}  {record.get('task_id')}  "
        f"try {record.get('try_number')}"
        for record in occurrences
    ]
    lines += ["  error:", *(f"    {line}" for line in incident.error.splitlines())]
    _emit("\n".join(lines))
    return 0


def cmd_triage(args: argparse.Namespace) -> int:
    """
    Classify a ``run_results.json`` or a dbt log offline and print class, action, summary and identifiers.

    :param args: ``file``, ``json`` (bool, optional) and ``drift_report`` (path, optional).
    :return: 0.
    :raises ValueError: when a file cannot be read.
    """
    report = triage_file(args.file, drift_events=_drift_events(getattr(args, "drift_report", None)))
    if getattr(args, "json", False):
        _print_json(report)
        return 0
    if not report["results"]:
        _emit(f"{report['file']}: no failed results")
        return 0
    for result in report["results"]:
        heading = f"{result['unique_id']} ({result['status']})" if result["unique_id"] else report["file"]
        lines = [
            heading,
            f"  class:       {result['failure_class']}",
            f"  action:      {result['action']}",
            f"  summary:     {result['summary']}",
            f"  identifiers: {', '.join(result['identifiers']) or '-'}",
        ]
        if result.get("root_cause"):
            lines.append(f"  root cause:  {result['root_cause']['message']}")
        _emit("\n".join(lines))
    return 0


def add_incident_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register ``incidents list``, ``incidents show`` and ``triage`` on the CLI's top-level subparsers.

    .. code-block:: python

        groups = parser.add_subparsers(dest="group", required=True)
        add_incident_commands(groups)

    :param subparsers: the object ``ArgumentParser.add_subparsers`` returned.
    """
    incidents = subparsers.add_parser("incidents", help="captured failures").add_subparsers(
        dest="command", required=True
    )
    listing = incidents.add_parser("list", help="stored incidents, newest first")
    listing.add_argument("--limit", type=int, help="show at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_incidents_list)

    show = incidents.add_parser("show", help="one incident with its triage and occurrences")
    show.add_argument("incident_id", help="e.g. inc-3f2a9c0d4e5b6a71")
    show.add_argument("--json", action="store_true", help="print the full record as JSON")
    show.set_defaults(func=cmd_incidents_show)

    triage = subparsers.add_parser("triage", help="classify a run_results.json or a dbt log offline")
    triage.add_argument("file", help="target/run_results.json or a log file")
    triage.add_argument("--drift-report", help="a drift report (`drift check --json` output) to correlate")
    triage.add_argument("--json", action="store_true", help="print JSON")
    triage.set_defaults(func=cmd_triage)
