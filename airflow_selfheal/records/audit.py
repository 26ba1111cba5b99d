"""
The audit trail of an incident: every step of its repair, who approved, how long each step took, the outcome.

Layout under ``<artifacts_root>/audit/<incident_id>/``::

    <seq:06d>-<UTC time>-<step>.json    one record per event, never rewritten
    seq/<seq:06d>.json                  the claim on a sequence number

The steps of one repair run on different workers, so the trail lives on the shared artifacts root and is only
ever appended to. A writer first claims the next sequence number by creating ``seq/<seq>.json`` exclusively and
moves on to the next number when another writer got there first; only then does it write its record. Two writers
therefore never share a number, and neither overwrites the other. A writer that dies between claim and record
leaves a gap in the numbers, which readers ignore.

Record details go through :func:`~airflow_selfheal.core.redaction.redact_obj` before they are stored. Records and
claims carry a ``schema_version`` (:mod:`airflow_selfheal.core.schema`, kinds ``audit_entry`` and
``audit_claim``); those of 0.1.0 have none and read as version 1.

Conventions the summary relies on: the approval step records ``approved_by=<user>``, and the run ends with
:meth:`AuditLog.finish`, a record of step ``outcome`` whose status is the outcome (``resolved``, ``rejected``,
``timed_out``, ``escalated``, ``failed`` ...).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.redaction import redact, redact_obj
from airflow_selfheal.core.schema import check, stamp
from airflow_selfheal.hooks.artifacts import ArtifactStore

if TYPE_CHECKING:
    from collections.abc import Callable

AUDIT_FOLDER = "audit"
OUTCOME_STEP = "outcome"
IN_PROGRESS = "in_progress"
#: Claims tried past the highest one seen before giving up; only reached by a broken store.
MAX_CLAIM_ATTEMPTS = 1000

_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_STEP = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_RECORD_NAME = re.compile(r"(?P<seq>\d{6,})-.+\.json")
_DETAIL_WIDTH = 80


class AuditLog:
    """
    The append-only audit trail of one incident on the artifacts root.

    .. code-block:: python

        audit = AuditLog("inc-0123456789abcdef")
        audit.record("clone", "succeeded", clone="SHOP__SELFHEAL_0123")
        audit.record("approve", "approved", approved_by="jane")
        audit.finish("resolved")
        print(audit.render_text())

    :param incident_id: the incident (letters, digits, ``_`` and ``-``).
    :param store: artifact store; defaults to the configured artifacts root.
    :param clock: returns the current time, timezone-aware; defaults to UTC now.
    """

    def __init__(
        self,
        incident_id: str,
        store: ArtifactStore | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not isinstance(incident_id, str) or not _INCIDENT_ID.fullmatch(incident_id):
            raise ValueError(
                f"incident id {incident_id!r} must be letters, digits, '_' and '-' (at most 128), "
                "e.g. 'inc-0123456789abcdef': list them with `airflow-selfheal incidents list`"
            )
        self.incident_id = incident_id
        self.store = store or ArtifactStore()
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.folder = f"{AUDIT_FOLDER}/{incident_id}"

    def record(self, step: str, status: str, **details: Any) -> dict[str, Any]:
        """
        Append one record.

        :param step: the step, e.g. ``triage``, ``clone``, ``validate``, ``approve``, ``promote``.
        :param status: what happened, e.g. ``started``, ``succeeded``, ``failed``, ``approved``.
        :param details: JSON-serialisable facts about the step; redacted before they are stored.
        :return: the stored record.
        """
        if not isinstance(step, str) or not _STEP.fullmatch(step):
            raise ValueError(f"step {step!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(status, str) or not status.strip():
            raise ValueError("status must be a non-empty string")
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the audit clock must return timezone-aware times")
        moment = moment.astimezone(timezone.utc)
        seq = self._claim(f"{moment:%Y%m%dT%H%M%S%fZ}-{step}")
        entry = {
            "incident_id": self.incident_id,
            "seq": seq,
            "step": step,
            "status": redact(status.strip()),
            "at": moment.isoformat(),
            "details": redact_obj(details),
        }
        name = f"{seq:06d}-{moment:%Y%m%dT%H%M%S%fZ}-{step}.json"
        if not self.store.create_json(f"{self.folder}/{name}", stamp(entry, "audit_entry")):
            # Unreachable while every writer claims its number first; refuse rather than lose the record.
            raise RuntimeError(
                f"audit record {self.folder}/{name} already exists; sequence claims are broken"
            )
        return entry

    def finish(self, outcome: str, **details: Any) -> dict[str, Any]:
        """
        Record the outcome of the repair; :meth:`summary` reports the last one.

        :param outcome: e.g. ``resolved``, ``rejected``, ``timed_out``, ``escalated``, ``failed``.
        :param details: facts about the outcome; redacted.
        :return: the stored record.
        """
        return self.record(OUTCOME_STEP, outcome, **details)

    def _claim(self, label: str) -> int:
        claimed = [int(name.removesuffix(".json")) for name in self.store.list(f"{self.folder}/seq")]
        start = max(claimed, default=0) + 1
        for seq in range(start, start + MAX_CLAIM_ATTEMPTS):
            if self.store.create_json(
                f"{self.folder}/seq/{seq:06d}.json", stamp({"record": label}, "audit_claim")
            ):
                return seq
        raise RuntimeError(
            f"could not claim an audit sequence number in {self.folder}/seq after {MAX_CLAIM_ATTEMPTS} tries"
        )

    def entries(self) -> list[dict[str, Any]]:
        """
        Every record, in sequence order.

        :return: the stored records; an unreadable one raises
            :class:`~airflow_selfheal.hooks.artifacts.ArtifactCorruptError` naming the file and its recovery command,
            one a newer release wrote :class:`~airflow_selfheal.core.schema.RecordVersionError`.
        """
        names = [name for name in self.store.list(self.folder) if _RECORD_NAME.fullmatch(name)]
        names.sort(key=lambda name: (int(name.split("-", 1)[0]), name))
        return [self._entry(f"{self.folder}/{name}") for name in names]

    def _entry(self, relative: str) -> dict[str, Any]:
        try:
            entry = check(self.store.read_json(relative), "audit_entry", self.store.url(relative))
        except ValueError as exc:
            raise self.store.corrupt(relative, f"is not an audit record ({exc})") from exc
        for field, kind in (("step", str), ("status", str), ("at", str), ("seq", int)):
            if not isinstance(entry.get(field), kind) or isinstance(entry.get(field), bool):
                raise self.store.corrupt(
                    relative, f"is not an audit record (its {field!r} is missing or invalid)"
                )
        if not _is_aware_time(entry["at"]):
            raise self.store.corrupt(
                relative,
                f"is not an audit record (its 'at' {entry['at']!r:.60} is not an ISO-8601 time with a zone)",
            )
        if entry.get("details") is not None and not isinstance(entry["details"], dict):
            raise self.store.corrupt(relative, "is not an audit record (its 'details' is not an object)")
        return entry

    def summary(self) -> dict[str, Any]:
        """
        The trail in figures.

        :return: ``incident_id``; ``outcome`` (the last :meth:`finish`, else ``in_progress``); ``approved_by``
            (the last ``approved_by`` detail, else None); ``started_at``, ``ended_at`` and
            ``duration_seconds`` over all records; ``records``; and ``steps``, one item per step in order of
            first appearance, with ``step``, ``status`` (its last), ``first_at``, ``last_at``,
            ``duration_seconds`` (between its first and last record, or the ``seconds`` detail a step audited
            once at its end gives, whichever is longer) and ``records``.
        """
        entries = self.entries()
        steps: dict[str, dict[str, Any]] = {}
        outcome = IN_PROGRESS
        approved_by: str | None = None
        for entry in entries:
            step = steps.setdefault(
                entry["step"], {"step": entry["step"], "first_at": entry["at"], "records": 0}
            )
            step.update(status=entry["status"], last_at=entry["at"], records=step["records"] + 1)
            step["duration_seconds"] = _seconds(step["first_at"], entry["at"])
            took = (entry.get("details") or {}).get("seconds")
            if isinstance(took, (int, float)) and not isinstance(took, bool):
                # A step audited once, at its end, says how long it ran.
                step["duration_seconds"] = max(step["duration_seconds"], float(took))
            if entry["step"] == OUTCOME_STEP:
                outcome = entry["status"]
            approver = (entry.get("details") or {}).get("approved_by")
            if approver:
                approved_by = str(approver)
        return {
            "incident_id": self.incident_id,
            "outcome": outcome,
            "approved_by": approved_by,
            "started_at": entries[0]["at"] if entries else None,
            "ended_at": entries[-1]["at"] if entries else None,
            "duration_seconds": _seconds(entries[0]["at"], entries[-1]["at"]) if entries else 0.0,
            "records": len(entries),
            "steps": list(steps.values()),
        }

    def render_text(self) -> str:
        """
        A timeline for people: a headline, then one line per step.

        Each step line holds its start (UTC), its offset from the first record, its duration, its last status,
        how many records it has when more than one, and the details of its last record, shortened.

        :return: the text, without a trailing newline.
        """
        entries = self.entries()
        if not entries:
            return f"{self.incident_id}: no audit records"
        summary = self.summary()
        last_details = {entry["step"]: entry.get("details") or {} for entry in entries}
        headline = (
            f"{self.incident_id}: {summary['outcome']} after {_duration(summary['duration_seconds'])}, "
            f"approved by {summary['approved_by'] or 'nobody'}"
        )
        step_width = max(len(step["step"]) for step in summary["steps"])
        status_width = max(len(step["status"]) for step in summary["steps"])
        lines = [headline]
        for step in summary["steps"]:
            start = datetime.fromisoformat(step["first_at"])
            offset = _seconds(summary["started_at"], step["first_at"])
            columns = [
                f"{start:%Y-%m-%d %H:%M:%S}Z",
                f"+{_duration(offset):<8}",
                f"{step['step']:<{step_width}}",
                f"{step['status']:<{status_width}}",
                f"{_duration(step['duration_seconds']):>8}",
            ]
            extra = f"x{step['records']}" if step["records"] > 1 else ""
            details = _compact(last_details[step["step"]])
            lines.append(
                "  " + "  ".join(columns) + "  " + "  ".join(part for part in (extra, details) if part)
            )
        return "\n".join(line.rstrip() for line in lines)


def _is_aware_time(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _seconds(start: str, end: str) -> float:
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)


def _duration(seconds: float) -> str:
    """``45s``, ``2m05s``, ``1h02m03s``."""
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\s+")


def _compact(details: dict[str, Any]) -> str:
    """One line: ``key=value`` pairs, terminal colours and line breaks (e.g. from dbt logs) collapsed."""
    text = " ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)}"
        for key, value in sorted(details.items())
    )
    text = _CONTROL.sub(lambda match: "" if match.group().startswith("\x1b") else " ", text)
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 1] + "…"
