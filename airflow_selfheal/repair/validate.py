"""
The validate task: build the plan in a sandbox against the clone, and learn from a failed attempt.

The sandbox is rebuilt on this worker from what the artifacts root and git hold (the stored plan, on the
project at the plan's ``base_sha``), and removed in a ``finally``. Attempt n+1 receives attempt n's files and
validation error and must build other files; a proposer with nothing new ends the loop at once. Every
attempt's evidence (dbt's log and run results, the diff, the plan; probes and the data diff when it passed) is
published to the artifacts root, failed attempts included, so it outlives the worker.

Before anything is written, each attempt's plan is checked again as stored (it crossed the artifacts root):
its paths against the plan's ``allowed_paths`` and the rules file's hard floor, its files against the project
for Jinja they would gain (:func:`~airflow_selfheal.core.fixes.plan_refusal`). A refused plan escalates with
the reason, without a build. An empty ``allowed_paths`` allows nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import (
    AttemptRecord,
    CloneOutcome,
    ProposedPlan,
    TriageDecision,
    ValidationOutcome,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from airflow_selfheal.core.fixes import FixPlan
    from airflow_selfheal.hooks.dbt import ValidationResult
    from airflow_selfheal.hooks.sandbox import Sandbox
    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext

log = logging.getLogger(__name__)

DIFF_LIMIT = 20_000
LOG_LIMIT = 4_000


def probe_clone(
    config: RepairConfig, manifest: Mapping[str, Any], incident: Mapping[str, Any], clone_database: str
) -> dict[str, Any]:
    """
    Bounded read-only probes in the clone: columns, row count, 20 sampled rows and null counts per relation.

    Each relation's failure is recorded in its ``errors``, never raised: probes are evidence, not a gate.
    """
    from airflow_selfheal.core.repair.relations import probe_targets
    from airflow_selfheal.hooks.probes import probe_relations
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

    targets = probe_targets(manifest, [str(node["unique_id"]) for node in incident.get("nodes") or ()])
    wanted = sorted({relation for group in targets.values() for relation in group})
    probed = probe_relations(
        SelfhealSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id), clone_database, wanted
    )
    return {**targets, **probed}


def _failure_text(result: ValidationResult) -> str:
    failures = "; ".join(f"{node.unique_id}: {node.message}" for node in result.failures)
    return str(result.error or failures or "the build did not pass")


def _evidence_prefix(incident_id: str, attempt_key: str, files_hash: str) -> str:
    return f"incidents/{incident_id}/proposals/{attempt_key}/{files_hash[:12]}"


def _refusal(plan: FixPlan, base: Path, allowed: list[str]) -> str | None:
    """Why the plan must not be written into a sandbox of ``base``, checked before any file is read or written."""
    from airflow_selfheal.core.fixes import plan_refusal
    from airflow_selfheal.core.rules import path_refusal

    for path in sorted(plan.changes):
        refused = path_refusal(path, allowed)
        if refused is not None:
            return refused
    root = os.path.realpath(base)
    originals: dict[str, str] = {}
    for path in plan.changes:
        location = os.path.realpath(base / path)
        if location.startswith(root + os.sep) and os.path.isfile(location):
            with open(location, encoding="utf-8", errors="replace") as handle:
                originals[path] = handle.read()
    return plan_refusal(plan.changes, originals, allowed)


def validate_step(config: RepairConfig, run: RunContext) -> ValidationOutcome:
    """
    Validate the proposed plan in the clone, attempt after attempt, and publish every attempt's evidence.

    :return: a ``proposal`` (with its diff, validation and data diff, published under ``evidence_prefix``) or an
        ``escalate`` with the reason and the last attempt's logs.
    """
    from airflow_selfheal.core.fixes import FixPlan
    from airflow_selfheal.repair.production import project_at

    decided = run.read(TriageDecision, "triage")
    cloned = run.read(CloneOutcome, "clone")
    proposed = run.read(ProposedPlan, "propose", "plan")
    if proposed.kind != "fix_plan" or not proposed.plan_path:
        raise ValueError(
            f"propose made no plan to validate ({proposed.reason}); the route should have escalated"
        )
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", run.attempt_key) or ".." in run.attempt_key:
        raise ValueError(f"attempt key {run.attempt_key!r} must be letters, digits, '.', '_' or '-'")
    # The stored plan is the one validated: the XCom copy is only its pointer.
    stored = ProposedPlan.read(run.store.read_json(proposed.plan_path), source=proposed.plan_path)
    root = config.sandboxes / run.attempt_key
    try:
        with project_at(config, stored.base_sha) as base:
            return _attempts(config, run, decided, cloned, stored, FixPlan.from_dict(stored.plan), base, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _attempts(
    config: RepairConfig,
    run: RunContext,
    decided: TriageDecision,
    cloned: CloneOutcome,
    proposed: ProposedPlan,
    plan: FixPlan,
    base: Path,
    root: Path,
) -> ValidationOutcome:
    from airflow_selfheal.core.fixes import Escalation
    from airflow_selfheal.core.redaction import redact
    from airflow_selfheal.core.repair.decisions import attempt_decision
    from airflow_selfheal.core.repair.proposers import AttemptFeedback, changes_hash, next_plan
    from airflow_selfheal.core.repair.selectors import validation_selector
    from airflow_selfheal.hooks.dbt import DbtValidationHook
    from airflow_selfheal.hooks.sandbox import Sandbox
    from airflow_selfheal.repair.propose import plan_path, proposal_request, proposers_of, store_plan

    validator = DbtValidationHook(timeout=config.dbt_timeout)
    request = None
    proposer = str(proposed.plan.get("proposer") or "rules")
    select = str(proposed.select or decided.select)
    # The rules file's allow-list as the plan stored it; empty allows nothing (no default widens it).
    allowed = list(proposed.allowed_paths)
    signatures: list[str] = []
    attempts: list[AttemptRecord] = []
    attempt = 1
    prefix: str | None = None  # the last built attempt's evidence, for a refusal after it
    while True:
        refused = _refusal(plan, base, allowed)
        if refused is not None:
            why = f"the {plan.fix_type} plan of attempt {attempt} ({proposer}) was not built: {refused}"
            return ValidationOutcome(
                status="escalate",
                reason=why[:LOG_LIMIT],
                attempts=attempts,
                evidence_prefix=prefix,
                fix_type=plan.fix_type,
                select=select,
                base_sha=proposed.base_sha,
            )
        sandbox = Sandbox.create(base, decided.incident_id, root=root / f"attempt-{attempt}", replace=True)
        sandbox.write_files(plan.changes, allowed_paths=allowed)
        result = validator.build(
            sandbox.project_dir,
            select=select,
            target_database=cloned.clone_database,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
        )
        passed = result.success and result.is_current(sandbox.files_hash())
        attempts.append(
            AttemptRecord(
                attempt=f"attempt-{attempt}",
                success=passed,
                error=None if passed else _failure_text(result),
                files_hash=result.files_hash,
                proposer=proposer,
            )
        )
        prefix = _evidence_prefix(decided.incident_id, run.attempt_key, result.files_hash)
        sandbox.record_evidence("plan", {**plan.to_dict(), "proposer": proposer, "select": select})
        if passed:
            return _proposal(config, run, decided, cloned, proposed, plan, sandbox, result, prefix, attempts)
        sandbox.publish(run.store, prefix)
        signatures.append(result.error_signature)
        decision = attempt_decision(signatures, False, config.max_attempts)
        reason = {
            "escalate_same_error": "the same validation error twice",
            "escalate_attempts": f"validation failed {len(signatures)} times (limit {config.max_attempts})",
        }.get(decision)
        if reason is None:
            request = request or proposal_request(config, decided, base)
            request = request.with_feedback(
                AttemptFeedback(
                    attempt=attempt,
                    proposer=proposer,
                    fix_type=plan.fix_type,
                    changes_hash=changes_hash(plan.changes),
                    changes=dict(plan.changes),
                    error=redact(_failure_text(result)),
                )
            )
            chosen = next_plan(proposers_of(config), request)
            if isinstance(chosen, Escalation):
                reason = chosen.reason
            else:
                attempt += 1
                plan, proposer = chosen.plan, chosen.proposer
                select = validation_selector(
                    decided.incident, plan.changes, request.manifest, request.project_files
                )
                store_plan(
                    run,
                    plan_path(decided.incident_id, run.attempt_key, attempt),
                    ProposedPlan(
                        kind="fix_plan",
                        plan={**plan.to_dict(), "proposer": proposer},
                        select=select,
                        allowed_paths=allowed,
                        base_sha=proposed.base_sha,
                    ).dump(),
                )
                continue
        else:
            reason = f"{reason}: {_failure_text(result)}"
        return ValidationOutcome(
            status="escalate",
            reason=reason[:LOG_LIMIT],
            attempts=attempts,
            logs_excerpt=result.logs_excerpt[-LOG_LIMIT:],
            evidence_prefix=prefix,
            fix_type=plan.fix_type,
            files_hash=result.files_hash,
            select=select,
            diff=sandbox.diff()[:DIFF_LIMIT],
            base_sha=proposed.base_sha,
        )


def _proposal(
    config: RepairConfig,
    run: RunContext,
    decided: TriageDecision,
    cloned: CloneOutcome,
    proposed: ProposedPlan,
    plan: FixPlan,
    sandbox: Sandbox,
    result: ValidationResult,
    prefix: str,
    attempts: list[AttemptRecord],
) -> ValidationOutcome:
    """The passed attempt: probes and the data diff in the clone, the evidence published, the approval body."""
    from airflow_selfheal.core.pages.repair import approval_body
    from airflow_selfheal.core.repair.relations import model_relations
    from airflow_selfheal.hooks.probes import data_diff
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
    relations = model_relations(manifest, [node.unique_id for node in result.nodes])
    diff = data_diff(
        SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id),
        relations,
        cloned.clone_database,
        config.prod_database,
    )
    sandbox.record_evidence("data_diff", diff)
    sandbox.record_evidence("probes", probe_clone(config, manifest, decided.incident, cloned.clone_database))
    sandbox.publish(run.store, prefix)
    outcome = ValidationOutcome(
        status="proposal",
        attempts=attempts,
        evidence_prefix=prefix,
        fix_type=plan.fix_type,
        tier=plan.tier,
        rationale=plan.rationale,
        changed_files=sandbox.changed_files,
        files_hash=result.files_hash,
        select=result.select,
        diff=sandbox.diff()[:DIFF_LIMIT],
        validation={
            "attempt": attempts[-1].attempt,
            "select": result.select,
            "elapsed_seconds": round(result.elapsed_seconds, 1),
            "nodes": [{"unique_id": n.unique_id, "status": n.status} for n in result.nodes],
            "source_rewrites": [dict(item) for item in result.source_rewrites],
        },
        data_diff=diff,
        base_sha=proposed.base_sha,
    )
    links = approval_links(config, run, decided.incident, prefix)
    body = approval_body(decided.incident, decided.triage, outcome.dump(), links=links)
    return outcome.model_copy(update={"approval_body": body})


def approval_links(
    config: RepairConfig, run: RunContext, incident: Mapping[str, Any], prefix: str
) -> list[tuple[str, str]]:
    """
    The approval body's links: the failed run and this repair run in the Airflow UI, and where the evidence is.

    The UI links need ``config.base_url`` or ``[api] base_url`` (its user and password, if any, are left out); a
    link that cannot be made is omitted, never an error: links must not fail a validated proposal.
    """
    from urllib.parse import quote, urlsplit, urlunsplit

    links: list[tuple[str, str]] = []
    try:
        base = config.base_url
        if not base:
            from airflow.configuration import conf

            base = conf.get("api", "base_url", fallback=None)
        parts = urlsplit(str(base or ""))
        if parts.scheme in ("http", "https") and parts.hostname:
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            netloc = host + (f":{parts.port}" if parts.port else "")
            root = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

            def run_url(dag_id: str, run_id: str) -> str:
                return f"{root}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

            if incident.get("pipeline") and incident.get("run_id"):
                links.append(
                    ("Failed pipeline run", run_url(str(incident["pipeline"]), str(incident["run_id"])))
                )
            links.append(("This repair run", run_url(run.dag_id, run.run_id)))
    except Exception as exc:  # noqa: BLE001 - a link is a convenience, never a reason to fail validation
        log.warning("No Airflow links in the approval body: %s", exc)
    stored = [("Evidence of this validation", prefix)]
    if incident.get("incident_id"):
        stored.append(("Incident record", f"incidents/{incident['incident_id']}/"))
    for label, relative in stored:
        try:
            links.append((label, run.store.url(relative)))
        except Exception as exc:  # noqa: BLE001
            log.warning("No %s link in the approval body: %s", label.lower(), exc)
    return links


def record_validation(run: RunContext, decided: TriageDecision, outcome: ValidationOutcome) -> None:
    """Audit the validate task's outcome."""
    run.record(
        decided.incident_id,
        "validate",
        outcome.status,
        attempts=[item.model_dump(mode="json") for item in outcome.attempts],
        reason=outcome.reason,
    )
