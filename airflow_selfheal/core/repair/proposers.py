"""
Who proposes a fix, and the attempt loop's memory: what each failed attempt built and why it failed.

A :class:`Proposer` turns a :class:`ProposalRequest` into a ``FixPlan`` or an ``Escalation``. The repair loop
asks its proposers in order (the deterministic rules first). When an attempt fails validation, the next
attempt's request carries every earlier attempt's files and error (:class:`AttemptFeedback`), and a proposer
must answer with *other* files: :func:`next_plan` skips a plan whose files were already built, so a proposer
with nothing new (the deterministic rules always are) ends the loop at once instead of building the same files
twice. It also skips a plan that writes a path the rules file's floor or globs refuse, or that adds Jinja to a
file (:func:`~airflow_selfheal.core.fixes.plan_refusal`), and the escalation names the refusal: a proposer
that read an error message or a failing row must not turn it into code dbt runs.

.. code-block:: python

    outcome = next_plan(proposers, request)
    if isinstance(outcome, Escalation):
        page(outcome.reason)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.fixes import Escalation, FixPlan
    from airflow_selfheal.core.rules import RulesConfig

#: Characters of an attempt's error carried into the next request (and an LLM prompt).
FEEDBACK_ERROR_LIMIT = 2_000


def changes_hash(changes: Mapping[str, str]) -> str:
    """A stable hash of a plan's files (path and text), to tell one plan's files from another's."""
    payload = json.dumps(sorted(changes.items()), ensure_ascii=False).encode()
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class AttemptFeedback:
    """
    A validation attempt that failed: what it built and what dbt said.

    :param attempt: 1 for the first attempt.
    :param proposer: the proposer whose plan it built.
    :param fix_type: the plan's fix type.
    :param changes_hash: :func:`changes_hash` of the files it built.
    :param changes: those files, path to text.
    :param error: the validation error and the failed nodes' messages, redacted, at most
        :data:`FEEDBACK_ERROR_LIMIT` characters.
    """

    attempt: int
    proposer: str
    fix_type: str
    changes_hash: str
    changes: Mapping[str, str]
    error: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "error", self.error[:FEEDBACK_ERROR_LIMIT])


@dataclass(frozen=True)
class ProposalRequest:
    """
    Everything a proposer may read: the incident and its triage, the project's files, manifest and rules.

    :param feedback: the failed attempts so far, oldest first; empty for the first attempt.
    """

    incident: Mapping[str, Any]
    triage: Mapping[str, Any]
    project_files: Mapping[str, str]
    manifest: Mapping[str, Any]
    rules: RulesConfig
    feedback: tuple[AttemptFeedback, ...] = field(default=())

    def with_feedback(self, item: AttemptFeedback) -> ProposalRequest:
        """The request for the next attempt."""
        return replace(self, feedback=(*self.feedback, item))


@runtime_checkable
class Proposer(Protocol):
    """Proposes a fix for a request; ``name`` appears in the audit trail and the page."""

    name: str

    def propose(self, request: ProposalRequest) -> FixPlan | Escalation:
        """A plan of full replacement files, or why there is none."""
        ...


class RuleProposer:
    """The deterministic rules of :mod:`airflow_selfheal.core.fixes`; the same request gives the same plan."""

    name = "rules"

    def propose(self, request: ProposalRequest) -> FixPlan | Escalation:
        """Apply the first rule that fits the triage."""
        from airflow_selfheal.core.fixes import propose_fix

        return propose_fix(
            triage=request.triage,
            incident=request.incident,
            project_files=request.project_files,
            manifest=request.manifest,
            rules=request.rules,
        )


@dataclass(frozen=True)
class ChosenPlan:
    """The plan to build next, and which proposer made it."""

    plan: FixPlan
    proposer: str


def next_plan(proposers: Sequence[Proposer], request: ProposalRequest) -> ChosenPlan | Escalation:
    """
    The first plan, from the proposers in order, whose files no earlier attempt built.

    :param proposers: e.g. ``[RuleProposer(), llm_proposer]``.
    :param request: with the failed attempts in ``feedback``.
    :return: the chosen plan, or an ``Escalation`` naming the last failure and why no proposer had anything
        new (each proposer's own escalation reason, that its plan was refused and why, or that it repeats a
        failed attempt).
    """
    from airflow_selfheal.core.fixes import Escalation, FixPlan, plan_refusal

    tried = {item.changes_hash: item.attempt for item in request.feedback}
    reasons: list[str] = []
    fix_type: str | None = None
    for proposer in proposers:
        outcome = proposer.propose(request)
        if isinstance(outcome, FixPlan):
            fix_type = fix_type or outcome.fix_type
            refused = plan_refusal(outcome.changes, request.project_files, request.rules.allowed_paths)
            if refused is not None:
                reasons.append(f"{proposer.name}: its {outcome.fix_type} plan was refused: {refused}")
                continue
            repeated = tried.get(changes_hash(outcome.changes))
            if repeated is None:
                return ChosenPlan(plan=outcome, proposer=proposer.name)
            reasons.append(
                f"{proposer.name}: its {outcome.fix_type} plan repeats attempt {repeated}, which failed"
            )
        else:
            fix_type = fix_type or outcome.fix_type
            reasons.append(f"{proposer.name}: {outcome.reason}")
    if not request.feedback:
        # The first attempt: a single proposer's own reason reads best on its own.
        reason = reasons[0].split(": ", 1)[1] if len(reasons) == 1 else "; ".join(reasons)
        return Escalation(reason=reason or "no proposer is configured", fix_type=fix_type)
    last = request.feedback[-1]
    return Escalation(
        reason=(
            f"validation attempt {last.attempt} ({last.proposer}, {last.fix_type}) failed: {last.error} "
            f"-- and no proposer has anything new ({'; '.join(reasons) or 'no proposer is configured'})"
        ),
        fix_type=fix_type or last.fix_type,
    )
