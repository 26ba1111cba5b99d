"""A drift event: one schema change between the baseline and the current snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift.data_types import is_widening, normalize_type

if TYPE_CHECKING:
    from collections.abc import Mapping

# The order events take within one table; table-level facts first.
EVENT_KINDS = (
    "table_not_found",
    "table_removed",
    "table_renamed",
    "table_added",
    "column_removed",
    "column_renamed",
    "column_added",
    "column_type_changed",
    "column_nullability_changed",
)
_KIND_ORDER = {kind: index for index, kind in enumerate(EVENT_KINDS)}


@dataclass(frozen=True)
class DriftEvent:
    """
    One schema change between the baseline and the current snapshot.

    .. code-block:: python

        event = DriftEvent(kind="column_removed", table="RAW.ORDERS", column="CUSTOMER_EMAIL")
        assert event.message == "raw.orders lost column CUSTOMER_EMAIL."

    :param kind: one of :data:`EVENT_KINDS`.
    :param table: the table key, ``SCHEMA.TABLE`` upper-case (for ``table_renamed``, the old key).
    :param column: the column, or None for table-level events (for ``column_renamed``, the old name).
    :param new_column: the new name of a renamed column.
    :param old_type: the baseline type, in the warehouse's spelling.
    :param new_type: the current type, in the warehouse's spelling.
    :param old_nullable: the baseline nullability.
    :param new_nullable: the current nullability.
    :param new_table: the new key of a renamed table.
    :param confidence: how sure an inferred rename is, in ``[0, 1]``.
    :param reason: the signals behind an inferred rename, e.g. ``same type VARCHAR; same position 3``.
    """

    kind: str
    table: str
    column: str | None = None
    new_column: str | None = None
    old_type: str | None = None
    new_type: str | None = None
    old_nullable: bool | None = None
    new_nullable: bool | None = None
    new_table: str | None = None
    confidence: float | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KIND_ORDER:
            raise ValueError(f"kind must be one of {EVENT_KINDS}, got {self.kind!r}")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be within [0, 1], got {self.confidence!r}")

    @property
    def message(self) -> str:
        """One human sentence, e.g. ``raw.orders.AMOUNT changed type from NUMBER(10,2) to VARCHAR.``."""
        table = self.table.lower()
        column = f"{table}.{self.column}"
        inferred = f"confidence {self.confidence or 0.0:.2f}: {self.reason or 'no signals'}"
        if self.kind == "table_not_found":
            return f"{table} is declared as a source but was not found."
        if self.kind == "table_removed":
            return f"{table} was removed."
        if self.kind == "table_added":
            return f"{table} was added."
        if self.kind == "table_renamed":
            return f"{table} was renamed to {(self.new_table or '').lower()} ({inferred})."
        if self.kind == "column_removed":
            return f"{table} lost column {self.column}."
        if self.kind == "column_added":
            return f"{table} gained column {self.column} ({self.new_type})."
        if self.kind == "column_renamed":
            return f"{column} was renamed to {self.new_column} ({inferred})."
        if self.kind == "column_type_changed":
            widened = "" if self.breaking else " (non-breaking: widened)"
            return f"{column} changed type from {self.old_type} to {self.new_type}{widened}."
        return f"{column} became {'nullable' if self.new_nullable else 'NOT NULL'}."

    @property
    def breaking(self) -> bool:
        """
        Whether the change can break a reader; False only for a type change that widens (:func:`is_widening`).

        Derived from the types, so records written before this flag existed read the same.
        """
        if self.kind != "column_type_changed" or not self.old_type or not self.new_type:
            return True
        return not is_widening(self.old_type, self.new_type)

    @property
    def identity(self) -> tuple[str, ...]:
        """The change itself, without message, confidence or reason; types normalised. Feeds the fingerprint."""
        return (
            self.kind,
            self.table,
            self.column or "",
            self.new_column or "",
            normalize_type(self.old_type) if self.old_type else "",
            normalize_type(self.new_type) if self.new_type else "",
            "" if self.old_nullable is None else str(self.old_nullable).lower(),
            "" if self.new_nullable is None else str(self.new_nullable).lower(),
            self.new_table or "",
        )

    def sort_key(self) -> tuple[str, int, str, str, str]:
        """
        Order events by table, then kind (:data:`EVENT_KINDS` order), then column.

        :return: the key.
        """
        return (
            self.table,
            _KIND_ORDER[self.kind],
            self.column or "",
            self.new_column or "",
            self.new_table or "",
        )

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, including the human ``message`` and the derived ``breaking``.

        :return: every field plus ``breaking`` and ``message``.
        """
        return {
            "kind": self.kind,
            "table": self.table,
            "column": self.column,
            "new_column": self.new_column,
            "old_type": self.old_type,
            "new_type": self.new_type,
            "old_nullable": self.old_nullable,
            "new_nullable": self.new_nullable,
            "new_table": self.new_table,
            "confidence": self.confidence,
            "reason": self.reason,
            "breaking": self.breaking,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftEvent:
        """
        Rebuild an event from :meth:`to_dict` output; ``message`` and ``breaking`` are derived, so not read.

        :param data: the dict.
        :return: the event.
        """
        confidence = data.get("confidence")
        return cls(
            kind=str(data["kind"]),
            table=str(data["table"]),
            column=data.get("column"),
            new_column=data.get("new_column"),
            old_type=data.get("old_type"),
            new_type=data.get("new_type"),
            old_nullable=data.get("old_nullable"),
            new_nullable=data.get("new_nullable"),
            new_table=data.get("new_table"),
            confidence=None if confidence is None else float(confidence),
            reason=data.get("reason"),
        )
