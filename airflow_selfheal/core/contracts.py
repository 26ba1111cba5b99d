"""
The typed contracts between the repair DAG's tasks: what each task returns, and what a later task reads back.

Each task returns ``Contract.dump()`` (plain JSON for XCom) and each task that needs an earlier result reads it
with ``Contract.read(value, source=...)``, which validates it. A value that does not fit (a task that did not
run, a record written by a newer release, a hand-edited XCom) raises :class:`ContractError` naming the task,
the field and the fix, before anything is done with it.

Every contract carries ``schema_version``. Values without one were written by 0.1.0 and read as version 1; a
version newer than :data:`SCHEMA_VERSION` is refused, because its meaning is unknown here.

.. code-block:: python

    decided = TriageDecision.read(ti.xcom_pull(task_ids="triage"), source="XCom of task triage")
    return CloneOutcome(clone_database=clone.clone_database, clone=clone.to_dict()).dump()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

#: The contracts' current schema; 0.1.0 wrote version 1 without saying so.
SCHEMA_VERSION = 1

_C = TypeVar("_C", bound="Contract")


class ContractError(ValueError):
    """A task's input does not fit its contract; the message names the source, the fields and the fix."""


class Part(BaseModel):
    """A nested piece of a contract: strict about its own fields, versioned by the contract that holds it."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Contract(BaseModel):
    """A value one task hands to another, with its schema version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION

    @classmethod
    def read(cls: type[_C], value: object, *, source: str) -> _C:
        """
        Validate ``value`` (a task's XCom or a stored record) as this contract.

        :param value: the JSON value.
        :param source: where it came from, for the message, e.g. ``XCom of task validate``.
        :raises ContractError: when it is missing, newer than this code, or does not fit.
        """
        if value is None:
            raise ContractError(
                f"{source} holds no {cls.__name__}: the task that writes it did not run or did not finish. "
                "Check that task's log, then clear it to run it again."
            )
        if not isinstance(value, Mapping):
            raise ContractError(f"{source} is a {type(value).__name__}, not a {cls.__name__} object")
        version = value.get("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ContractError(
                f"{source} was written with schema version {version!r} of {cls.__name__}; this release reads "
                f"versions up to {SCHEMA_VERSION}. Upgrade airflow-selfheal on every worker to the same release."
            )
        try:
            return cls.model_validate(dict(value))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(value)'}: {error['msg']}"
                for error in exc.errors()[:8]
            )
            raise ContractError(
                f"{source} is not a valid {cls.__name__} ({problems}). It was not used; nothing was changed. "
                "Clear the task that wrote it to write it again."
            ) from None

    def dump(self) -> dict[str, Any]:
        """Plain JSON for XCom or a record."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------------------------
# triage -> route, and every later task
# ---------------------------------------------------------------------------------------------------------------


class TriageDecision(Contract):
    """
    The triage task's result.

    :param incident: ``Incident.to_dict()`` (checked by ``Incident.from_dict`` when it was loaded).
    :param triage: ``Triage.to_dict()``.
    :param action: what the triage recommends, after the repair loop's own rules: ``retry``, ``repair``,
        ``escalate``.
    :param branch: the task the route follows.
    :param select: the failed selector (``dbt build --select``), empty when the incident names no dbt node.
    """

    incident: dict[str, Any]
    triage: dict[str, Any]
    action: str
    branch: str
    select: str

    @property
    def incident_id(self) -> str:
        """The incident's id."""
        return str(self.incident["incident_id"])


# ---------------------------------------------------------------------------------------------------------------
# retry and rerun: dbt in production
# ---------------------------------------------------------------------------------------------------------------


class NodeResult(Part):
    """One node dbt reported: its id and status."""

    unique_id: str
    status: str


class WarehouseWait(Part):
    """How long a retry waited for the warehouse to answer ``select 1``."""

    answered: bool
    attempts: int
    waited_seconds: float


class ProdBuild(Contract):
    """
    A ``dbt build`` in production (the retry's or the post-promotion re-run's).

    :param sha: the commit that was built, when the project is a git repository (the re-run builds the
        promoted commit, never a worker's own checkout).
    """

    success: bool
    select: str
    returncode: int | None
    elapsed_seconds: float
    nodes: list[NodeResult] = Field(default_factory=list)
    logs_excerpt: str = ""
    sha: str | None = None
    warehouse: WarehouseWait | None = None


# ---------------------------------------------------------------------------------------------------------------
# clone -> propose, validate, cleanup
# ---------------------------------------------------------------------------------------------------------------


class CloneOutcome(Contract):
    """
    The clone task's result: ``CloneResult.to_dict()`` fields plus what the repair loop added.

    :param tolerated_missing: objects the clone lacks that the failure itself broke (validation rebuilds them).
    :param dbt_built_views: view models dbt built in the clone because no reading of their text reproduced them.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    clone_database: str
    source_database: str
    strategy: str | None = None
    at_ignored_reason: str | None = None
    notes: list[str] = Field(default_factory=list)
    tolerated_missing: list[list[str]] = Field(default_factory=list)
    dbt_built_views: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# propose -> validate
# ---------------------------------------------------------------------------------------------------------------


class ProposedPlan(Contract):
    """
    The propose task's result: a plan to validate, or why there is none.

    :param kind: ``fix_plan`` or ``escalation``.
    :param plan: ``FixPlan.to_dict()`` or ``Escalation.to_dict()``.
    :param plan_path: where the plan is stored (write-once) on the artifacts root, for a fix plan.
    :param select: what validation builds (the edited nodes, their children and the failed nodes).
    :param allowed_paths: the project paths a fix may write.
    :param base_sha: the project commit the plan was made on, when the project is a git repository; validation
        builds on exactly that commit, wherever it runs.
    """

    kind: Literal["fix_plan", "escalation"]
    plan: dict[str, Any]
    plan_path: str | None = None
    select: str | None = None
    allowed_paths: list[str] = Field(default_factory=list)
    base_sha: str | None = None

    @property
    def fix_type(self) -> str | None:
        """The rule (or proposer) that made the plan."""
        value = self.plan.get("fix_type")
        return None if value is None else str(value)

    @property
    def reason(self) -> str:
        """Why there is no plan (an escalation), else empty."""
        return str(self.plan.get("reason") or "")


# ---------------------------------------------------------------------------------------------------------------
# validate -> page, approve, promote, rerun
# ---------------------------------------------------------------------------------------------------------------


class AttemptRecord(Part):
    """One validation attempt: its folder, whether it passed, its error, and the files it built."""

    attempt: str
    success: bool
    error: str | None = None
    files_hash: str | None = None
    proposer: str | None = None


class ValidationOutcome(Contract):
    """
    The validate task's result: a validated proposal, or an escalation with the last attempt's logs.

    Evidence (logs, diff, probes, data diff) is published under ``evidence_prefix`` on every outcome.
    """

    status: Literal["proposal", "escalate"]
    attempts: list[AttemptRecord] = Field(default_factory=list)
    reason: str | None = None
    logs_excerpt: str = ""
    evidence_prefix: str | None = None
    fix_type: str | None = None
    tier: str | None = None
    rationale: str | None = None
    changed_files: list[str] = Field(default_factory=list)
    files_hash: str | None = None
    select: str | None = None
    diff: str = ""
    validation: dict[str, Any] = Field(default_factory=dict)
    data_diff: dict[str, Any] = Field(default_factory=dict)
    base_sha: str | None = None
    approval_body: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# promote -> rerun, accept_baseline
# ---------------------------------------------------------------------------------------------------------------


class Promotion(Contract):
    """
    The promote task's result (``PromotionResult`` fields) and the commit production now builds.

    :param deployed_sha: the merge commit (merged) or the fix commit (``branch_only``); the re-run and the
        baseline acceptance check out exactly this commit.
    """

    branch: str
    commit: str
    deploy_branch: str
    mode: str
    merged: bool
    merge_commit: str | None = None
    pushed: bool
    local_deploy_updated: bool
    reused_branch: bool
    pr_hint: str | None = None
    deployed_sha: str
    approved_by: str | None = None


class BaselineAcceptance(Contract):
    """Whether the sources' schemas became the accepted drift baseline after the fix went green in prod."""

    accepted: bool
    reason: str | None = None
    version: str | None = None
    baseline: str | None = None
    tables: int | None = None
    sha: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# pages and the end of the run
# ---------------------------------------------------------------------------------------------------------------


class Escalation(Contract):
    """A page that hands the incident to a person: why, which step failed (if one did), and the delivery."""

    reason: str
    failed_step: str | None = None
    delivery: dict[str, Any] = Field(default_factory=dict)


class RepairOutcome(Contract):
    """The cleanup task's result: the run's outcome and what happened to the clone."""

    outcome: str
    clone: str | None = None
    #: how the clone went: ``dropped``, or ``emptied`` where the warehouse cannot drop a database.
    clone_dropped: str | None = None
    swept_orphans: list[str] | str = Field(default_factory=list)
