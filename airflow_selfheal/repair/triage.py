"""The triage task: load the run's incident and decide which branch the repair takes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import TriageDecision

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.repair.run import RunContext


def load_incident(conf: Mapping[str, Any], store: ArtifactStore | None = None) -> dict[str, Any]:
    """
    The incident of a repair run, from its conf (``repair_conf``) or, when it was too big, from ``incident_path``.

    :param conf: the dag run's conf.
    :param store: the artifacts store; default the configured one (read only when the conf lacks the incident).
    :return: ``Incident.to_dict()``, checked by ``Incident.from_dict``.
    :raises ValueError: when the conf names no incident, or names another one than it carries.
    """
    from airflow_selfheal.core.incident import Incident

    data = conf.get("incident")
    if not data:
        path = conf.get("incident_path")
        if not path:
            raise ValueError("the repair run's conf has neither 'incident' nor 'incident_path'")
        data = _read_incident_path(str(path), store)
    incident = Incident.from_dict(data)
    for key in ("incident_id", "fingerprint"):
        if conf.get(key) and conf[key] != getattr(incident, key):
            raise ValueError(
                f"conf {key} {conf[key]!r} does not match the incident's {getattr(incident, key)!r}"
            )
    return incident.to_dict()


def _read_incident_path(path: str, store: ArtifactStore | None) -> Any:
    if "://" in path or path.startswith("/"):
        from airflow.sdk import ObjectStoragePath

        return json.loads(ObjectStoragePath(path if "://" in path else f"file://{path}").read_text())
    if store is None:
        from airflow_selfheal.hooks.artifacts import ArtifactStore

        store = ArtifactStore()
    return store.read_json(path)


def triage_step(run: RunContext) -> TriageDecision:
    """
    Load the incident from the run's conf and decide: retry, repair or escalate (audited).

    :return: the decision every later task reads.
    """
    from airflow_selfheal.core.repair.decisions import triage_decision

    incident = load_incident(run.conf, run.store)
    decision = TriageDecision(incident=incident, **triage_decision(incident))
    run.record(
        decision.incident_id, "triage", decision.action, branch=decision.branch, select=decision.select
    )
    return decision
