"""
The steps that touch production after a decision: the retry, the post-promotion re-run, the baseline acceptance.

The re-run and the baseline acceptance build exactly the promoted commit, checked out in a temporary worktree
(fetched first when this worker's clone does not have it yet), never this worker's own checkout of the project:
on another worker that checkout may still hold the old code.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_selfheal.core.contracts import (
    BaselineAcceptance,
    NodeResult,
    ProdBuild,
    Promotion,
    TriageDecision,
    ValidationOutcome,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext


@contextlib.contextmanager
def project_at(config: RepairConfig, sha: str | None) -> Iterator[Path]:
    """
    The dbt project at ``sha`` in a temporary worktree (removed afterwards), or the live project without a SHA.

    Installed packages (``dbt_packages``, never committed) are copied from the live project.
    """
    if not sha:
        yield Path(config.project_dir)
        return
    from airflow_selfheal.hooks.git import checkout_at

    with checkout_at(config.project_dir, sha, remote=config.git_remote) as tree:
        packages = Path(config.project_dir) / "dbt_packages"
        if packages.is_dir() and not (tree / "dbt_packages").exists():
            shutil.copytree(packages, tree / "dbt_packages", symlinks=True)
        yield tree


def build_in_prod(config: RepairConfig, select: str, *, sha: str | None = None) -> ProdBuild:
    """``dbt build --select <select>`` in production, of the project at ``sha`` (or the live one)."""
    from airflow_selfheal.hooks.dbt import DbtProductionHook

    with project_at(config, sha) as project:
        result = DbtProductionHook().build(
            project,
            select=select,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
            timeout=config.dbt_timeout,
        )
    return ProdBuild(
        success=result.success,
        select=select,
        returncode=result.returncode,
        elapsed_seconds=result.elapsed_seconds,
        nodes=[NodeResult(unique_id=str(n["unique_id"]), status=str(n["status"])) for n in result.nodes],
        logs_excerpt=result.logs_excerpt,
        sha=sha,
    )


def _audited(run: RunContext, decided: TriageDecision, step: str, build: ProdBuild) -> ProdBuild:
    details = build.dump()
    details.pop("schema_version", None)
    run.record(decided.incident_id, step, "succeeded" if build.success else "failed", **details)
    if not build.success:
        raise RuntimeError(f"{step}: dbt build --select {build.select} failed in prod: {build.logs_excerpt}")
    return build


def retry_step(config: RepairConfig, run: RunContext) -> ProdBuild:
    """
    Wait (bounded) until the warehouse answers, then re-run the failed (or blocked) selector in prod.

    :raises WarehouseUnreachableError: when it never answered (audited as ``timed_out``).
    :raises RuntimeError: when the build fails (audited).
    """
    from airflow_selfheal.repair.warehouse import WarehouseUnreachableError, wait_for_warehouse

    decided = run.read(TriageDecision, "triage")
    try:
        waited = wait_for_warehouse(config.snowflake_conn_id, config.warehouse_wait)
    except WarehouseUnreachableError as exc:
        run.record(decided.incident_id, "wait_for_warehouse", "timed_out", error=str(exc))
        raise
    run.record(decided.incident_id, "wait_for_warehouse", "answered", **waited.model_dump(mode="json"))
    build = build_in_prod(config, decided.select)
    return _audited(run, decided, "retry", build.model_copy(update={"warehouse": waited}))


def rerun_step(config: RepairConfig, run: RunContext) -> ProdBuild:
    """
    Build in prod what validation built (the fixed models and their children), at the promoted commit.

    :raises RuntimeError: when the build fails (audited).
    """
    from airflow_selfheal.core.repair.selectors import promoted_selector

    decided = run.read(TriageDecision, "triage")
    validated = run.read(ValidationOutcome, "validate", "result")
    promotion = run.read(Promotion, "promote")
    select = promoted_selector(validated.dump(), decided.select)
    return _audited(run, decided, "rerun", build_in_prod(config, select, sha=promotion.deployed_sha))


def accept_baseline_step(config: RepairConfig, run: RunContext) -> BaselineAcceptance:
    """
    After a drift-driven fix is promoted and green in prod, accept the sources' current schemas as the baseline.

    The sources come from the manifest of the promoted commit itself (parsed in its worktree), not from a
    ``target/manifest.json`` that a worker's checkout may hold from before the fix.
    """
    from airflow_selfheal.core.repair.decisions import approver

    decided = run.read(TriageDecision, "triage")
    _, author = approver(run.pull("approve", None))
    result = _accept_baseline(config, run, decided, author)
    run.record(
        decided.incident_id,
        "accept_baseline",
        "accepted" if result.accepted else "skipped",
        **{key: value for key, value in result.dump().items() if key != "schema_version"},
    )
    return result


def _accept_baseline(
    config: RepairConfig, run: RunContext, decided: TriageDecision, approved_by: str
) -> BaselineAcceptance:
    if not config.baseline_name:
        return BaselineAcceptance(accepted=False, reason="no baseline_name configured")
    if not decided.triage.get("root_cause"):
        return BaselineAcceptance(accepted=False, reason="the failure was not caused by source drift")
    import json

    from airflow_selfheal.hooks.dbt import DbtProductionHook
    from airflow_selfheal.hooks.schemas import capture_snapshot, connection_database, resolve_targets
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook
    from airflow_selfheal.records.baselines import BaselineStore

    promotion = run.read(Promotion, "promote")
    hook = SelfhealSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id)
    with (
        project_at(config, promotion.deployed_sha) as project,
        tempfile.TemporaryDirectory(prefix="selfheal-baseline-") as work,
    ):
        manifest = DbtProductionHook().parse(
            project,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
            work_dir=Path(work),
        )
        manifest_path = Path(work) / "manifest.json"
        manifest_path.write_text(json.dumps(manifest))
        targets = resolve_targets(
            manifest_path=str(manifest_path), tables=None, default_database=connection_database(hook)
        )
    snapshot = capture_snapshot(hook, targets)
    baselines = BaselineStore(config.baseline_name)
    version = baselines.record(snapshot.to_dict(), snapshot.content_hash)
    baselines.accept(
        version,
        accepted_by=approved_by,
        reason=f"selfheal fix for {decided.incident_id} promoted and re-run green",
    )
    return BaselineAcceptance(
        accepted=True,
        version=version,
        baseline=config.baseline_name,
        tables=len(snapshot.tables),
        sha=promotion.deployed_sha,
    )
