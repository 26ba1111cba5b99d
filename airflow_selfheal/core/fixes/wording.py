"""How rationales and escalation reasons are worded: one-line quotes, name lists, the drift evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift import DriftEvent

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def _evidence_message(evidence: Mapping[str, Any]) -> str:
    try:
        return DriftEvent.from_dict(evidence).message
    except (KeyError, TypeError, ValueError):
        return str(evidence.get("message") or evidence)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _names(items: Sequence[str]) -> str:
    return ", ".join(items)
