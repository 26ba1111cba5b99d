"""``RepairConfig``: how the repair DAG reaches the dbt project, the warehouse, git and on-call."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.repair.proposers import Proposer


@dataclass(frozen=True)
class RepairConfig:
    """
    How the repair DAG reaches the dbt project, the warehouse, git and on-call.

    .. code-block:: python

        config = RepairConfig(project_dir="/opt/dbt/shop", snowflake_conn_id="snowflake_prod", prod_database="PROD")
        dag = build_repair_dag(config=config)

    :param project_dir: the live dbt project, a git working tree on the deploy branch (only read until promotion).
    :param snowflake_conn_id: the production Snowflake connection.
    :param prod_database: the production database (cloned, never written before approval).
    :param deploy_branch: the branch production deploys from.
    :param promote_mode: ``merge`` (merge into ``deploy_branch``) or ``branch_only`` (push a branch for a PR).
    :param slack_conn_id: a ``slackwebhook`` connection, or None.
    :param pagerduty_conn_id: a ``pagerduty_events`` connection, or None.
    :param approval_timeout: how long the approval waits; a timeout escalates and applies nothing.
    :param assigned_users: who may approve (``{"id": ..., "name": ...}`` dicts), or None for anyone.
    :param max_attempts: validation attempts. Attempt n+1 receives attempt n's files and error and must build other
        files: the proposers are asked again, and when none has anything new (the deterministic rules never
        do) the loop escalates at once. The same validation error twice also escalates.
    :param proposers: who proposes fixes, asked in order; default the deterministic rules alone
        (:class:`~airflow_selfheal.core.repair.proposers.RuleProposer`).
    :param manifest_path: the project's ``manifest.json``; default ``<project_dir>/target/manifest.json``.
    :param sandbox_root: local folder for sandboxes, each at ``<sandbox_root>/<run>-try<n>/.selfheal/runs/<incident>``;
        default ``<tmp>/selfheal``.
    :param dbt_timeout: seconds allowed to each dbt build.
    :param git_remote: the remote promotion pushes to, or None for a repository without one.
    :param baseline_name: the drift baseline of the project's sources (as ``SchemaDriftCheckOperator``'s); after a
        drift-driven fix is promoted and re-run green, the new schemas become the accepted baseline. None skips it.
    :param base_url: the Airflow UI's address for the approval link; default ``[api] base_url``.
    :param clone_ttl: every run's cleanup also drops selfheal clones older than this (orphans of killed runs).
    :param clone_schemas: clone only these schemas of ``prod_database`` (default: the whole database).
    :param clone_at_failure: pin the clone ``AT`` the failure time (Snowflake time travel), so validation sees
        the data the failed run saw; where the warehouse refuses it, the clone holds the current state and the
        clone's ``at_ignored_reason`` says why.
    :param warehouse_wait: how long a retry waits for the warehouse to answer ``select 1`` before it re-runs
        anything (probing with exponential backoff from :data:`WAREHOUSE_PROBE_FIRST_DELAY` seconds); when it
        never answers, the retry fails (and pages) saying how long it waited. ``timedelta(0)`` probes once.
    """

    project_dir: str
    snowflake_conn_id: str
    prod_database: str
    deploy_branch: str = "main"
    promote_mode: str = "merge"
    slack_conn_id: str | None = None
    pagerduty_conn_id: str | None = None
    approval_timeout: timedelta = timedelta(hours=4)
    assigned_users: Sequence[Mapping[str, str]] | None = None
    max_attempts: int = 2
    manifest_path: str | None = None
    sandbox_root: str | None = None
    dbt_timeout: float = 3600.0
    git_remote: str | None = "origin"
    baseline_name: str | None = None
    base_url: str | None = None
    clone_ttl: timedelta = timedelta(hours=24)
    clone_schemas: Sequence[str] | None = None
    clone_at_failure: bool = False
    warehouse_wait: timedelta = timedelta(minutes=10)
    proposers: Sequence[Proposer] = field(default=())

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.promote_mode not in ("merge", "branch_only"):
            raise ValueError(f"promote_mode must be 'merge' or 'branch_only', got {self.promote_mode!r}")
        if not self.prod_database:
            raise ValueError("prod_database must name the production database")
        if self.approval_timeout <= timedelta(0):
            raise ValueError("approval_timeout must be positive")
        if not isinstance(self.warehouse_wait, timedelta) or self.warehouse_wait < timedelta(0):
            raise ValueError(
                f"warehouse_wait must be a timedelta of zero or more (e.g. timedelta(minutes=10)), "
                f"got {self.warehouse_wait!r}"
            )

    @property
    def manifest(self) -> Path:
        """The manifest file."""
        return Path(self.manifest_path or Path(self.project_dir) / "target" / "manifest.json")

    @property
    def sandboxes(self) -> Path:
        """The local folder holding ``.selfheal/runs``."""
        return Path(self.sandbox_root or Path(tempfile.gettempdir()) / "selfheal")
