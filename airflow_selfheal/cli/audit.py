"""``airflow-selfheal audit show INCIDENT_ID [--json]``: an incident's steps, approver, timings and outcome."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_selfheal.cli.output import emit
from airflow_selfheal.records.audit import AuditLog

if TYPE_CHECKING:
    import argparse

    from airflow_selfheal.hooks.artifacts import ArtifactStore


def audit_show_text(incident_id: str, *, as_json: bool = False, store: ArtifactStore | None = None) -> str:
    """
    What ``audit show`` prints.

    :param incident_id: the incident.
    :param as_json: the summary and every record as JSON instead of the timeline.
    :param store: artifact store; defaults to the configured artifacts root.
    :return: the text.
    :raises LookupError: when the incident has no audit record.
    """
    audit = AuditLog(incident_id, store)
    entries = audit.entries()
    if not entries:
        raise LookupError(
            f"no audit records for {incident_id} under {audit.store.url(audit.folder)}. Check the incident id "
            "and the [selfheal] artifacts_root setting."
        )
    if as_json:
        return json.dumps(
            {"summary": audit.summary(), "entries": entries}, indent=2, sort_keys=True, default=str
        )
    return audit.render_text()


def cmd_audit_show(args: argparse.Namespace) -> int:
    """Print an incident's audit trail."""
    emit(audit_show_text(args.incident_id, as_json=args.json))
    return 0


def add_audit_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register ``audit show INCIDENT_ID [--json]``.

    :param subparsers: the CLI's top-level command groups (``parser.add_subparsers(...)``).
    """
    audit = subparsers.add_parser("audit", help="incident audit trails").add_subparsers(
        dest="command", required=True
    )
    show = audit.add_parser("show", help="an incident's steps, approver, timings and outcome")
    show.add_argument("incident_id", help="the incident, e.g. inc-0123456789abcdef")
    show.add_argument("--json", action="store_true", help="print the summary and every record as JSON")
    show.set_defaults(func=cmd_audit_show)
