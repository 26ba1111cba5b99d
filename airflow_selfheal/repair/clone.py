"""The clone task: a verified zero-copy clone of production for the incident."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_selfheal.core.contracts import CloneOutcome, TriageDecision

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_selfheal.repair.config import RepairConfig
    from airflow_selfheal.repair.run import RunContext

log = logging.getLogger(__name__)


def clone_step(config: RepairConfig, run: RunContext) -> CloneOutcome:
    """
    A verified zero-copy clone of production for the incident (audited).

    Views the warehouse's text cannot reproduce in the clone (a dialect round-trip it does not survive) but that
    are dbt view models are built by dbt itself in the clone, with the validation profile that refuses prod, and
    the clone is verified again. Whatever is still missing makes the clone unusable.

    :raises RuntimeError: when the clone is incomplete or a view in it still reads production (it is dropped).
    """
    from airflow_selfheal.core.repair.relations import dbt_view_models, failed_relations
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    decided = run.read(TriageDecision, "triage")
    incident = decided.incident
    hook = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id)
    at = None
    if config.clone_at_failure and incident.get("failed_at"):
        from datetime import datetime, timezone

        at = datetime.fromisoformat(str(incident["failed_at"]))
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    schemas = list(config.clone_schemas) if config.clone_schemas else None
    clone = hook.clone_for_incident(config.prod_database, decided.incident_id, schemas=schemas, at=at)
    try:
        manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
        rebuilt = set(failed_relations(incident, manifest))
        # A view the failure itself broke (the failed model and its downstream) cannot be re-created in the clone
        # either; validation rebuilds exactly those, so only other gaps make the clone unusable.
        blocking = [item for item in clone.missing if str(item[0]).upper() not in rebuilt]
        views = dbt_view_models(manifest, [str(name) for name, _ in blocking])
        built: list[str] = []
        if views:
            built = _build_views_in_clone(config, run, decided.incident_id, clone.clone_database, views)
            clone = hook.verify_clone(clone, schemas=schemas)
            blocking = [item for item in clone.missing if str(item[0]).upper() not in rebuilt]
    except Exception:
        hook.drop_clone(clone.clone_database)
        raise
    if blocking or clone.prod_references:
        hook.drop_clone(clone.clone_database)
        raise RuntimeError(
            f"clone {clone.clone_database} of {config.prod_database} is not complete: missing {blocking}, "
            f"views reading prod {clone.prod_references}"
        )
    outcome = CloneOutcome(
        **clone.to_dict(),
        tolerated_missing=[list(item) for item in clone.missing if str(item[0]).upper() in rebuilt],
        dbt_built_views=built,
    )
    run.record(
        decided.incident_id,
        "clone",
        "succeeded",
        clone=outcome.clone_database,
        strategy=outcome.strategy,
        at_ignored_reason=outcome.at_ignored_reason,
        dbt_built_views=outcome.dbt_built_views,
        notes=outcome.notes,
    )
    return outcome


def _build_views_in_clone(
    config: RepairConfig, run: RunContext, incident_id: str, clone_database: str, views: Mapping[str, str]
) -> list[str]:
    """``dbt run`` the view models in the clone from an unchanged sandbox copy of the project (then removed)."""
    from airflow_selfheal.hooks.dbt import DbtValidationHook
    from airflow_selfheal.hooks.sandbox import Sandbox

    root = config.sandboxes / f"{run.attempt_key}-clone"
    try:
        sandbox = Sandbox.create(Path(config.project_dir), incident_id, root=root, replace=True)
        result = DbtValidationHook(timeout=config.dbt_timeout).build(
            sandbox.project_dir,
            select=" ".join(sorted(set(views.values()))),
            target_database=clone_database,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
            command="run",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if result.error:
        log.warning("dbt could not build the clone's views %s: %s", sorted(views), result.error)
    return sorted(node.unique_id for node in result.nodes if node.status == "success")
