"""The ``incidents`` and ``triage`` commands: stored incidents, and offline triage of dbt artifacts and logs.

.. code-block:: console

    airflow-selfheal incidents list [--limit N] [--json]
    airflow-selfheal incidents show inc-3f2a9c0d4e5b6a71 [--json]
    airflow-selfheal triage target/run_results.json [--drift-report drift.json] [--json]
    airflow-selfheal triage dbt.log
    airflow-selfheal triage --evaluate tests/data/triage [--json] [--fail-under 95]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.cli.inputs import ARTIFACT_NAMES, percent, positive_int
from airflow_selfheal.cli.output import emit, print_json
from airflow_selfheal.records.incidents import (
    FAILED_STATUSES,
    INCIDENTS_FOLDER,
    LOG_WINDOW_BYTES,
    IncidentStore,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.incident import Incident


# ---------------------------------------------------------------------------------------------------------------
# Offline triage of dbt artifacts and logs
# ---------------------------------------------------------------------------------------------------------------


def triage_run_results(
    run_results: Mapping[str, Any],
    *,
    drift_events: Sequence[Mapping[str, Any]] = (),
    origin: str = "the file",
) -> list[dict[str, Any]]:
    """
    Classify every failed result of a ``run_results.json``.

    :param run_results: the parsed file.
    :param drift_events: drift event dicts to correlate with the errors.
    :param origin: where it was read from, for messages.
    :return: per failed result, ``unique_id`` and ``status`` followed by the triage's ``to_dict()``.
    :raises ValueError: when it has no ``results`` list, i.e. it is not a ``run_results.json``.
    """
    from airflow_selfheal.core.triage import classify

    results = run_results.get("results")
    if not isinstance(results, list):
        found = "none" if results is None else f"a {type(results).__name__}"
        raise ValueError(
            f"{origin} is not a dbt run_results.json (its 'results' is {found}, not a list): "
            "pass target/run_results.json"
        )
    classified = []
    for result in results:
        if not isinstance(result, dict) or str(result.get("status")).lower() not in FAILED_STATUSES:
            continue
        unique_id = str(result.get("unique_id") or "")
        resource_type = unique_id.split(".", 1)[0] or None
        message = str(result.get("message") or "")
        if resource_type == "test":
            # dbt's message for a failed test is only "Got 3 results, ..."; its log names the test first.
            parts = unique_id.split(".")
            message = f"Failure in test {parts[2] if len(parts) > 2 else unique_id}\n{message}"
        triage = classify(
            message, resource_type=resource_type, status=str(result.get("status")), drift_events=drift_events
        )
        classified.append({"unique_id": unique_id, "status": result.get("status"), **triage.to_dict()})
    return classified


def triage_file(path: str | Path, *, drift_events: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """
    Classify a ``run_results.json`` (each failed result) or a log file (as one failure).

    A file is read as run results when it parses as a JSON object with a ``results`` list; another dbt
    artifact (a manifest, ``sources.json``, a catalog), a JSON array or any other ``.json`` file is refused by
    name, and so is a file that is empty, binary or not text. Anything else is a log, of which only the first and
    last :data:`LOG_WINDOW_BYTES` bytes are read. UTF-8 (with or without a byte order mark), UTF-16 and UTF-32
    are read.

    :param path: the file.
    :param drift_events: drift event dicts to correlate with the errors.
    :return: ``file``, ``kind`` (``run_results`` or ``log``) and ``results`` (see :func:`triage_run_results`;
        a log's one result has ``unique_id`` and ``status`` None).
    :raises ValueError: naming the file, what is wrong with it and what to pass, when it cannot be triaged.
    """
    from airflow_selfheal.cli.inputs import artifact_kind, other_artifact, read_text_input
    from airflow_selfheal.core.triage import classify

    location = Path(path)
    is_json = location.suffix == ".json"
    text = read_text_input(
        location,
        expected="target/run_results.json or a dbt log",
        window_bytes=None if is_json else LOG_WINDOW_BYTES,
    )
    parsed = _json_document(location, text, is_json)
    if parsed is not None:
        if not isinstance(parsed, dict):
            raise ValueError(
                f"{location} is a JSON {_json_type(parsed)}, not a dbt run_results.json (an object with a "
                "'results' list): pass target/run_results.json"
            )
        kind = artifact_kind(parsed)
        refused = other_artifact(location, kind, "run-results")
        if refused is not None:
            raise refused
        if kind == "run-results" or "results" in parsed:
            return {
                "file": str(location),
                "kind": "run_results",
                "results": triage_run_results(parsed, drift_events=drift_events, origin=str(location)),
            }
        if is_json:
            raise ValueError(
                f"{location} is a JSON object without a 'results' list, not a dbt run_results.json: "
                "pass target/run_results.json, or a dbt log"
            )
    triage = classify(text, drift_events=drift_events)
    return {
        "file": str(location),
        "kind": "log",
        "results": [{"unique_id": None, "status": None, **triage.to_dict()}],
    }


def _json_document(location: Path, text: str, is_json: bool) -> Any:
    """The parsed file when it is one JSON document; None for a log (JSON lines included)."""
    if not is_json and not text.lstrip().startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if not is_json or exc.msg == "Extra data":
            return None  # a log, or dbt's JSON log lines
        raise ValueError(
            f"{location} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): pass a complete "
            "target/run_results.json (run dbt again if it stopped while writing it)"
        ) from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else type(value).__name__


def _drift_events(path: str | None) -> list[dict[str, Any]]:
    from airflow_selfheal.cli.inputs import artifact_kind, read_text_input

    if not path:
        return []
    location = Path(path)
    expected = "a drift report (the output of `airflow-selfheal drift check --json`)"
    text = read_text_input(location, expected=expected)
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{location} is not valid JSON ({exc.msg} at line {exc.lineno}): pass {expected}"
        ) from None
    kind = artifact_kind(report)
    if kind is not None:
        raise ValueError(
            f"{location} is {ARTIFACT_NAMES.get(kind, 'a dbt artifact')}, not a drift report: pass {expected}"
        )
    events = report.get("events") if isinstance(report, dict) else report
    if not isinstance(events, list):
        raise ValueError(f"{location} has no 'events' list: pass {expected}")
    return [event for event in events if isinstance(event, dict)]


# ---------------------------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------------------------


def _subject(incident: Incident) -> str:
    if not incident.nodes:
        return f"task {incident.task_id or '?'}"
    more = f" (+{len(incident.nodes) - 1})" if len(incident.nodes) > 1 else ""
    return incident.nodes[0].unique_id + more


def _failure_class(incident: Incident) -> str:
    return str((incident.triage or {}).get("failure_class", "untriaged"))


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
        if int(limit) < 1:
            raise ValueError(f"--limit {limit} shows nothing: pass 1 or more, or leave it out to list all")
        found = found[: int(limit)]
    counts = {incident.incident_id: len(incidents.occurrences(incident.incident_id)) for incident in found}
    if getattr(args, "json", False):
        print_json(
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
        emit(f"no incidents under {incidents.store.url(INCIDENTS_FOLDER)}")
        return 0
    for incident in found:
        emit(
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
        print_json({"incident": incident.to_dict(), "occurrences": occurrences})
        return 0
    triage = dict(incident.triage or {})
    # The triage is stored as the classifier wrote it; a record edited by hand may hold anything there.
    root_cause = triage.get("root_cause") if isinstance(triage.get("root_cause"), dict) else {}
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
    emit("\n".join(lines))
    return 0


def cmd_triage_evaluate(args: argparse.Namespace) -> int:
    """
    Measure the classifier on a labelled corpus and print the confusion matrix.

    :param args: ``evaluate`` (a corpus file or folder), ``json`` (bool) and ``fail_under`` (percent or None).
    :return: 0, or 1 when the accuracy on unambiguous entries is under ``fail_under``.
    :raises ValueError: when the corpus cannot be read or an entry is malformed.
    """
    from airflow_selfheal.core.triage.evaluate import evaluate, load_corpus, render

    try:
        corpus = load_corpus(_corpus_path(args.evaluate))
    except ValueError as exc:
        if ": pass " in str(exc):
            raise
        raise ValueError(f"{exc}: pass {_CORPUS} (tests/data/triage/*.yaml show the format)") from exc
    evaluation = evaluate(corpus)
    if getattr(args, "json", False):
        print_json(evaluation.to_dict())
    else:
        emit(render(evaluation))
    fail_under = getattr(args, "fail_under", None)
    return 1 if fail_under is not None and evaluation.accuracy * 100 < fail_under else 0


_CORPUS = "a labelled corpus (a YAML, JSON or JSON Lines file of entries, or a folder of them)"


def _corpus_path(path: str) -> Path:
    """A corpus path, its file checked as text (and not a dbt artifact) before the corpus reader parses it."""
    from airflow_selfheal.cli.inputs import artifact_kind, read_text_input

    location = Path(path)
    if location.is_file():
        text = read_text_input(location, expected=_CORPUS)
        if location.suffix == ".json":
            try:
                kind = artifact_kind(json.loads(text))
            except ValueError:
                kind = None
            if kind is not None:
                raise ValueError(
                    f"{location} is {ARTIFACT_NAMES.get(kind, 'a dbt artifact')}, not a labelled corpus: "
                    f"pass {_CORPUS}"
                )
    return location


def cmd_triage(args: argparse.Namespace) -> int:
    """
    Classify a ``run_results.json`` or a dbt log offline and print class, action, summary and identifiers.

    :param args: ``file``, ``json`` (bool, optional) and ``drift_report`` (path, optional).
    :return: 0.
    :raises ValueError: when a file cannot be read.
    """
    file = getattr(args, "file", None)
    if getattr(args, "evaluate", None):
        if file:
            raise ValueError(f"pass either a file to classify ({file}) or --evaluate CORPUS, not both")
        return cmd_triage_evaluate(args)
    if not file:
        raise ValueError("pass a file to classify (run_results.json or a log), or --evaluate CORPUS")
    if getattr(args, "fail_under", None) is not None:
        raise ValueError("--fail-under applies to --evaluate CORPUS only: leave it out to classify a file")
    report = triage_file(args.file, drift_events=_drift_events(getattr(args, "drift_report", None)))
    if getattr(args, "json", False):
        print_json(report)
        return 0
    if not report["results"]:
        emit(f"{report['file']}: no failed results")
        return 0
    for result in report["results"]:
        heading = f"{result['unique_id']} ({result['status']})" if result["unique_id"] else report["file"]
        lines = [
            heading,
            f"  class:       {result['failure_class']}",
            f"  action:      {result['action']}",
            f"  summary:     {result['summary']}",
            f"  identifiers: {', '.join(result['identifiers']) or '-'}",
            f"  decided by:  {result.get('signal') or 'none'} (confidence {result.get('confidence') or 0:.2f})",
        ]
        if result.get("root_cause"):
            lines.append(f"  root cause:  {result['root_cause']['message']}")
        emit("\n".join(lines))
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
    listing.add_argument("--limit", type=positive_int, metavar="N", help="show at most this many (1 or more)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=cmd_incidents_list)

    show = incidents.add_parser("show", help="one incident with its triage and occurrences")
    show.add_argument("incident_id", help="e.g. inc-3f2a9c0d4e5b6a71")
    show.add_argument("--json", action="store_true", help="print the full record as JSON")
    show.set_defaults(func=cmd_incidents_show)

    triage = subparsers.add_parser(
        "triage",
        help="classify a run_results.json or a dbt log offline, or measure the classifier on a corpus",
    )
    triage.add_argument("file", nargs="?", help="target/run_results.json or a log file")
    triage.add_argument(
        "--evaluate",
        metavar="CORPUS",
        help="a labelled corpus (YAML, JSON or JSON Lines file, or a folder): print accuracy and confusion matrix",
    )
    triage.add_argument(
        "--fail-under",
        type=percent,
        metavar="PERCENT",
        help="with --evaluate: exit 1 when the accuracy on unambiguous entries is under PERCENT",
    )
    triage.add_argument("--drift-report", help="a drift report (`drift check --json` output) to correlate")
    triage.add_argument("--json", action="store_true", help="print JSON")
    triage.set_defaults(func=cmd_triage)
