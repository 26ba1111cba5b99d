"""
What a rule hands back: a :class:`FixPlan` of full replacement files, or an :class:`Escalation` saying why not.

Inside the package a rule fills a ``_Draft`` and raises ``_Escalate`` to stop;
:func:`~airflow_selfheal.core.fixes.propose.propose_fix` turns them into the public types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.rules import FIX_TYPES, TIERS

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class FixPlan:
    """
    A proposed patch: full replacement files plus the reasoning a reviewer needs.

    .. code-block:: python

        plan = FixPlan(
            fix_type="column_rename",
            tier="auto",
            rationale="raw.orders.CUSTOMER_EMAIL was renamed to CONTACT_EMAIL ...",
            changes={"models/staging/stg_orders.sql": new_sql, "tests/selfheal_guard_raw_orders_columns.sql": guard},
            guard_tests={"tests/selfheal_guard_raw_orders_columns.sql": guard},
            priority=1,
        )

    :param fix_type: one of :data:`~airflow_selfheal.core.rules.FIX_TYPES`.
    :param tier: ``auto`` or ``review`` (shown in the page), from the rules file.
    :param rationale: human text naming the evidence, the change and the guard test.
    :param changes: project-relative path to the file's complete new text; guard tests included.
    :param guard_tests: the added guard tests, path to text; each is also in ``changes``.
    :param priority: 1 for the fix closest to the data contract; the position in ``FIX_TYPES``.
    """

    fix_type: str
    tier: str
    rationale: str
    changes: Mapping[str, str]
    guard_tests: Mapping[str, str]
    priority: int

    def __post_init__(self) -> None:
        if self.fix_type not in FIX_TYPES:
            raise ValueError(f"fix_type must be one of {FIX_TYPES}, got {self.fix_type!r}")
        if self.tier not in TIERS:
            raise ValueError(f"tier must be one of {TIERS}, got {self.tier!r}")
        object.__setattr__(self, "changes", dict(self.changes))
        object.__setattr__(self, "guard_tests", dict(self.guard_tests))
        for path, text in self.guard_tests.items():
            if self.changes.get(path) != text:
                raise ValueError(f"guard test {path} must also be in changes, with the same text")

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: every field; ``kind`` is ``fix_plan``.
        """
        return {
            "kind": "fix_plan",
            "fix_type": self.fix_type,
            "tier": self.tier,
            "rationale": self.rationale,
            "changes": dict(self.changes),
            "guard_tests": dict(self.guard_tests),
            "priority": self.priority,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FixPlan:
        """
        Rebuild a plan from :meth:`to_dict` output.

        :param data: the dict.
        :return: the plan.
        """
        return cls(
            fix_type=str(data["fix_type"]),
            tier=str(data["tier"]),
            rationale=str(data["rationale"]),
            changes={str(path): str(text) for path, text in data["changes"].items()},
            guard_tests={str(path): str(text) for path, text in data["guard_tests"].items()},
            priority=int(data["priority"]),
        )


@dataclass(frozen=True)
class Escalation:
    """
    No deterministic fix: a person (or the LLM step) must take over, for the stated reason.

    .. code-block:: python

        outcome = propose_fix(...)
        if isinstance(outcome, Escalation):
            log.warning("escalating: %s", outcome.reason)

    :param reason: one or two human sentences naming what blocked the rule (a model, a path, a user).
    :param fix_type: the rule that was tried, when one applied.
    """

    reason: str
    fix_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict, e.g. for XCom.

        :return: ``kind`` (``escalation``), ``reason`` and ``fix_type``.
        """
        return {"kind": "escalation", "reason": self.reason, "fix_type": self.fix_type}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Escalation:
        """
        Rebuild an escalation from :meth:`to_dict` output.

        :param data: the dict.
        :return: the escalation.
        """
        fix_type = data.get("fix_type")
        return cls(reason=str(data["reason"]), fix_type=None if fix_type is None else str(fix_type))


class _Escalate(Exception):
    """Raised inside a rule; :func:`propose_fix` turns it into an :class:`Escalation`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Draft:
    rationale: list[str]
    changes: dict[str, str] = field(default_factory=dict)
    guard_tests: dict[str, str] = field(default_factory=dict)

    def add_guard(self, path: str, text: str) -> None:
        self.changes[path] = text
        self.guard_tests[path] = text
