"""The promote task: commit the validated files from the published proposal, and merge or push them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from airflow_selfheal.core.contracts import Promotion, TriageDecision, ValidationOutcome

if TYPE_CHECKING:
    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext


def promote_step(config: RepairConfig, run: RunContext, approve_task: str) -> Promotion:
    """
    Commit the validated files (read from the published proposal) on ``selfheal/<incident>`` and merge or push.

    The files come from the artifacts root, not from a sandbox: the worker that validated them may be gone.

    :return: the promotion, with ``deployed_sha``, the commit the re-run builds.
    :raises RuntimeError: without an approval, or when the published files differ from the validated ones.
    """
    from airflow_selfheal.core.repair.decisions import approver
    from airflow_selfheal.hooks.git import GitPromotionHook

    decided = run.read(TriageDecision, "triage")
    response = run.pull(approve_task, None)
    approved, author = approver(response)
    # A Reject skips this task, so running means Approve even when the response is not in XCom.
    if response is not None and not approved:
        raise RuntimeError("promotion without an approval")
    validated = run.read(ValidationOutcome, "validate", "result")
    prefix = str(validated.evidence_prefix)
    index = run.store.read_json(f"{prefix}/sandbox.json")
    if index.get("files_hash") != validated.files_hash:
        raise RuntimeError(f"the published proposal {prefix} is not the validated one; validate again")
    files = {path: run.store.read_text(f"{prefix}/files/{path}") for path in validated.changed_files}
    result = GitPromotionHook().promote(
        config.project_dir,
        incident_id=decided.incident_id,
        files=files,
        message=f"selfheal: {validated.fix_type} for {decided.incident_id}\n\n{validated.rationale or ''}",
        author=author,
        deploy_branch=config.deploy_branch,
        mode=cast("Literal['merge', 'branch_only']", config.promote_mode),
        remote=config.git_remote,
    )
    promotion = Promotion(**result.to_dict(), deployed_sha=result.deployed_sha, approved_by=author)
    details = {key: value for key, value in promotion.dump().items() if key != "schema_version"}
    run.record(decided.incident_id, "promote", "succeeded", **details)
    return promotion
