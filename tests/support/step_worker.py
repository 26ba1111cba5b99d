"""Run one repair step in its own process, as a worker would: ``python -m tests.support.step_worker SPEC``.

The spec (JSON) names the step, the worker's ``RepairConfig`` (its own project checkout and sandbox folder), the
earlier tasks' XComs and task states, and where to write the result. Nothing else passes between two steps:
what a later step needs must travel through these XComs or the artifacts root (configured by the environment,
as on a real worker), so a step that reads another worker's disk fails here.

The result file holds ``{"return": <the step's return value>, "pushed": {key: value}}``.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

APPROVE_TASK = "approve"
WATCHED = ("retry", "clone", "propose", "validate", "page", "promote", "rerun")


def _run_step(step: str, config: Any, run: Any) -> tuple[Any, dict[str, Any]]:
    from airflow_selfheal.repair import cleanup, clone, notify, production, promote, propose, triage, validate

    if step == "triage":
        return triage.triage_step(run).dump(), {}
    if step == "clone":
        return clone.clone_step(config, run).dump(), {}
    if step == "propose":
        proposed = propose.propose_step(config, run)
        return "validate" if proposed.kind == "fix_plan" else "escalate_unfixable", {"plan": proposed.dump()}
    if step == "validate":
        outcome = validate.validate_step(config, run)
        return ("page" if outcome.status == "proposal" else "escalate_invalid"), {"result": outcome.dump()}
    if step == "promote":
        return promote.promote_step(config, run, APPROVE_TASK).dump(), {}
    if step == "rerun":
        return production.rerun_step(config, run).dump(), {}
    if step == "accept_baseline":
        return production.accept_baseline_step(config, run).dump(), {}
    if step == "escalate_failure":
        paged = notify.escalate_failure_step(config, run, WATCHED)
        return (paged.dump() if paged else None), {}
    if step == "cleanup":
        return cleanup.cleanup_step(config, run).dump(), {}
    raise ValueError(f"unknown step {step!r}")


def main(spec_path: str) -> int:
    """Run the spec's step and write its result."""
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.repair import RepairConfig
    from airflow_selfheal.repair.run import RunContext

    spec = json.loads(Path(spec_path).read_text())
    values = dict(spec["config"])
    for key in ("approval_timeout", "warehouse_wait", "clone_ttl"):
        if key in values:
            values[key] = timedelta(seconds=values[key])
    config = RepairConfig(**values)
    xcoms = {tuple(key.split("|", 1)): value for key, value in spec.get("xcoms", {}).items()}
    pushed: dict[str, Any] = {}
    run = RunContext(
        dag_id="selfheal_repair",
        run_id=spec["run_id"],
        task_id=spec["step"],
        try_number=int(spec.get("try_number", 1)),
        store=ArtifactStore(),
        conf=spec.get("conf", {}),
        pull=lambda task, key: xcoms.get((task, key or "")),
        push=pushed.__setitem__,
        task_states=lambda task_ids: {
            t: spec.get("states", {})[t] for t in task_ids if t in spec.get("states", {})
        },
    )
    returned, extra = _run_step(spec["step"], config, run)
    Path(spec["result_path"]).write_text(json.dumps({"return": returned, "pushed": {**pushed, **extra}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
