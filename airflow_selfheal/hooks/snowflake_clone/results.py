"""What a clone attempt made and found: :class:`CloneResult`, the value that travels through XCom."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


STRATEGIES = ("database", "tables")
DROP_OUTCOMES = ("dropped", "emptied", "already_empty")


@dataclass(frozen=True)
class CloneResult:
    """
    What :meth:`SnowflakeCloneHook.clone_for_incident` made and what it found when it checked.

    .. code-block:: python

        result = hook.clone_for_incident("PROD_DB", incident.incident_id, at=incident.failed_at)
        if not result.verified:
            raise AirflowException(f"clone incomplete: {result.missing} {result.prod_references}")
        return result.to_dict()

    :param clone_database: the clone's name.
    :param source_database: the database it was cloned from.
    :param incident_id: the incident it belongs to.
    :param strategy: ``database`` when the whole-database clone was complete by itself, ``tables`` when some or
        all tables were cloned one by one (asked for, or a database/schema clone left them out).
    :param tables: ``SCHEMA.TABLE`` of every table in the clone that was checked.
    :param views: ``SCHEMA.VIEW`` of every view in the clone that was checked.
    :param missing: ``(object, reason)`` for every object that is absent or differs from its source.
    :param prod_references: ``SCHEMA.VIEW`` -> the fully-qualified prod objects that view in the clone still
        reads.
    :param verified: True only if nothing is missing, no view reads prod and the row counts could be compared.
    :param row_counts: ``SCHEMA.TABLE`` -> rows in the clone.
    :param at: the requested time-travel moment (ISO-8601), or None.
    :param at_ignored_reason: why the clone holds the current state instead of ``at``, or None.
    :param fallback_reason: why a database or schema clone was not used as is, or None.
    :param notes: anything else worth a look (e.g. a view DDL scanned by regex).
    :param created_at: when the clone was made (ISO-8601 UTC), as encoded in its name.
    """

    clone_database: str
    source_database: str
    incident_id: str
    strategy: str
    tables: tuple[str, ...]
    views: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]
    prod_references: Mapping[str, tuple[str, ...]]
    verified: bool
    row_counts: Mapping[str, int]
    at: str | None
    at_ignored_reason: str | None
    fallback_reason: str | None
    notes: tuple[str, ...]
    created_at: str

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")

    def to_dict(self) -> dict[str, Any]:
        """
        A JSON-compatible dict for XCom.

        :return: every field; ``missing`` as ``[{"object": ..., "reason": ...}]``.
        """
        return {
            "clone_database": self.clone_database,
            "source_database": self.source_database,
            "incident_id": self.incident_id,
            "strategy": self.strategy,
            "tables": list(self.tables),
            "views": list(self.views),
            "missing": [{"object": name, "reason": reason} for name, reason in self.missing],
            "prod_references": {view: list(refs) for view, refs in self.prod_references.items()},
            "verified": self.verified,
            "row_counts": dict(self.row_counts),
            "at": self.at,
            "at_ignored_reason": self.at_ignored_reason,
            "fallback_reason": self.fallback_reason,
            "notes": list(self.notes),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CloneResult:
        """
        Rebuild a result from :meth:`to_dict` output.

        :param data: the dict.
        :return: the result.
        """
        return cls(
            clone_database=str(data["clone_database"]),
            source_database=str(data["source_database"]),
            incident_id=str(data["incident_id"]),
            strategy=str(data["strategy"]),
            tables=tuple(data["tables"]),
            views=tuple(data["views"]),
            missing=tuple((str(item["object"]), str(item["reason"])) for item in data["missing"]),
            prod_references={view: tuple(refs) for view, refs in data["prod_references"].items()},
            verified=bool(data["verified"]),
            row_counts={name: int(count) for name, count in data["row_counts"].items()},
            at=data.get("at"),
            at_ignored_reason=data.get("at_ignored_reason"),
            fallback_reason=data.get("fallback_reason"),
            notes=tuple(data.get("notes", ())),
            created_at=str(data["created_at"]),
        )
