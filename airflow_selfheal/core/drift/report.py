"""The drift report: the events of one comparison, its status, headline and fingerprint; and the policy on drift."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift.events import DriftEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

REPORT_STATUSES = ("clean", "drift_detected", "no_baseline")


class DriftPolicy(str, Enum):
    """What an operator does when drift is detected: fail the task, log a warning, or only report it."""

    FAIL = "fail"
    WARN = "warn"
    REPORT = "report"


@dataclass(frozen=True)
class DriftReport:
    """
    The result of :func:`diff_snapshots`.

    .. code-block:: python

        report = diff_snapshots(baseline, current)
        if report.status == "drift_detected":
            log.warning("%s [%s]", report.headline, report.fingerprint)

    :param status: ``clean``, ``drift_detected`` or ``no_baseline``.
    :param events: the events, in :meth:`DriftEvent.sort_key` order.
    :param baseline_hash: the baseline's :attr:`SchemaSnapshot.content_hash`, or None without a baseline.
    :param current_hash: the current snapshot's :attr:`SchemaSnapshot.content_hash`.
    """

    status: str
    events: tuple[DriftEvent, ...]
    baseline_hash: str | None
    current_hash: str

    def __post_init__(self) -> None:
        if self.status not in REPORT_STATUSES:
            raise ValueError(f"status must be one of {REPORT_STATUSES}, got {self.status!r}")

    @property
    def breaking_events(self) -> tuple[DriftEvent, ...]:
        """The events that can break a reader: what the headline, fingerprint, notifications and triage use."""
        return tuple(event for event in self.events if event.breaking)

    @property
    def non_breaking_events(self) -> tuple[DriftEvent, ...]:
        """The widening type changes, listed apart; they neither page nor explain a failure."""
        return tuple(event for event in self.events if not event.breaking)

    @property
    def fingerprint(self) -> str:
        """
        The first 16 hex digits of a sha256 over the sorted set of the breaking events' identities, else ``""``.

        Messages, confidences and reasons are left out, so the same set of changes gives the same fingerprint;
        non-breaking events are left out too, so widening noise never re-notifies.
        """
        events = self.breaking_events
        if not events:
            return ""
        identities = sorted({event.identity for event in events})
        canonical = json.dumps(identities, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    @property
    def headline(self) -> str:
        """``clean``, ``drift detected (3 changes)`` or ``no baseline``; non-breaking events are not counted."""
        if self.status == "no_baseline":
            return "no baseline"
        if self.status == "clean":
            return "clean"
        count = len(self.breaking_events) or len(self.events)
        return f"drift detected ({count} change{'' if count == 1 else 's'})"

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: ``status``, ``headline``, ``fingerprint``, ``baseline_hash``, ``current_hash``, ``events`` and
            ``non_breaking_changes`` (how many of the events are non-breaking).
        """
        return {
            "status": self.status,
            "headline": self.headline,
            "fingerprint": self.fingerprint,
            "baseline_hash": self.baseline_hash,
            "current_hash": self.current_hash,
            "events": [event.to_dict() for event in self.events],
            "non_breaking_changes": len(self.non_breaking_events),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        """
        Rebuild a report from :meth:`to_dict` output; ``headline``, ``fingerprint`` and the counts are derived.

        :param data: the dict.
        :return: the report.
        """
        return cls(
            status=str(data["status"]),
            events=tuple(DriftEvent.from_dict(event) for event in data["events"]),
            baseline_hash=data.get("baseline_hash"),
            current_hash=str(data["current_hash"]),
        )
