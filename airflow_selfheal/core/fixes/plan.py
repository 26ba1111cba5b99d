"""
What a rule hands back: a :class:`FixPlan` of full replacement files, or an :class:`Escalation` saying why not.

Inside the package a rule fills a ``_Draft`` and raises ``_Escalate`` to stop;
:func:`~airflow_selfheal.core.fixes.propose.propose_fix` turns them into the public types.

:func:`plan_refusal` is what every plan, whoever proposed it, must pass before a file is written: the paths
through the rules file's floor and globs, and no Jinja gained (:func:`jinja_refusal`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.guards import UnsafeTextError, assert_no_jinja, jinja_delimiters
from airflow_selfheal.core.rules import FIX_TYPES, TIERS, path_refusal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

# Jinja that only names a relation or sets a test's severity, with literal arguments: what a guard test or a
# new model needs, and nothing that runs a query. Any other Jinja a plan adds is refused.
_NAME = r"""(['"])[A-Za-z0-9_$.-]+\{n}"""
_STRUCTURAL_JINJA = re.compile(
    r"(?<!\{)\{\{-?[ \t]*(?:"
    + rf"source\([ \t]*{_NAME.format(n=1)}[ \t]*,[ \t]*{_NAME.format(n=2)}[ \t]*\)"
    + rf"|ref\([ \t]*{_NAME.format(n=3)}[ \t]*(?:,[ \t]*{_NAME.format(n=4)}[ \t]*)?\)"
    + r"""|config\([ \t]*severity[ \t]*=[ \t]*(['"])(?:warn|error)\5[ \t]*\)"""
    + r")[ \t]*-?\}\}"
)


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


def _unstructured(text: str) -> str:
    return _STRUCTURAL_JINJA.sub("", text)


def jinja_refusal(changes: Mapping[str, str], project_files: Mapping[str, str]) -> str | None:
    """
    Why a plan's files may not be written because they gain Jinja, or None.

    dbt renders a file's Jinja wherever it stands, so a plan must not add any: compared as a multiset of
    delimiter occurrences (``{{``, ``{%``, ``{#`` and their closers, see
    :data:`~airflow_selfheal.core.guards.JINJA_DELIMITERS`), a new file content holds no more of each than the
    original file did (none, for a new file). The only Jinja a plan may add is a ``source()`` or ``ref()`` of
    literal names and ``config(severity=...)``, which name a relation or a severity and run nothing.

    :param changes: path to the file's complete new text.
    :param project_files: path to the original text; a path missing here is a new file.
    :return: a message naming the file and the delimiters it gains, or None.
    """
    for path, text in sorted(changes.items()):
        gained = jinja_delimiters(_unstructured(text)) - jinja_delimiters(
            _unstructured(project_files.get(path, ""))
        )
        if gained:
            counts = ", ".join(f"{delimiter!r} x{count}" for delimiter, count in sorted(gained.items()))
            return (
                f"the new {path} gains Jinja delimiters the original did not have ({counts}); a plan must not add "
                "Jinja, which dbt would run in validation and in production"
            )
    return None


def plan_refusal(
    changes: Mapping[str, str], project_files: Mapping[str, str], allowed_paths: Iterable[str]
) -> str | None:
    """
    Why a plan's files may not be written, whoever proposed them (the rules or an LLM), or None.

    .. code-block:: python

        refused = plan_refusal(plan.changes, request.project_files, request.rules.allowed_paths)
        if refused is not None:
            return Escalation(refused, plan.fix_type)

    :param changes: path to the file's complete new text.
    :param project_files: path to the original text of the files the plan changes (others are new).
    :param allowed_paths: the rules file's ``allowed_paths``; the hard floor applies whatever they say.
    :return: the first refusal, naming the path and the rule: a path the floor or the globs refuse
        (:func:`~airflow_selfheal.core.rules.path_refusal`), then Jinja gained (:func:`jinja_refusal`).
    """
    patterns = list(allowed_paths)
    for path in sorted(changes):
        refused = path_refusal(path, patterns)
        if refused is not None:
            return refused
    return jinja_refusal(changes, project_files)


class _Escalate(Exception):
    """Raised inside a rule; :func:`propose_fix` turns it into an :class:`Escalation`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _from_outside(value: object, what: str) -> str:
    """
    Text a rule takes from a drift event, an error message or a failing row, to write into a file.

    :raises _Escalate: when it holds a Jinja delimiter, with the reason (the incident escalates; nothing is written).
    """
    try:
        return assert_no_jinja(value, what=what)
    except UnsafeTextError as exc:
        raise _Escalate(
            f"{exc}; the fix was not written, and a person must check where this text came from"
        ) from None


@dataclass
class _Draft:
    rationale: list[str]
    changes: dict[str, str] = field(default_factory=dict)
    guard_tests: dict[str, str] = field(default_factory=dict)

    def add_guard(self, path: str, text: str) -> None:
        self.changes[path] = text
        self.guard_tests[path] = text
