"""The failed-run page: what on-call receives when a dbt task (or a task before dbt) fails."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_selfheal.core.pages.render import Page, format_lines

if TYPE_CHECKING:
    from airflow_selfheal.core.incident import Incident

BLOCKED_NODES_SHOWN = 10


def failure_page(incident: Incident) -> Page:
    """
    The failed-run notification: "dbt run failed in <env>: model stg_orders (missing_column)".

    :param incident: the classified incident.
    :return: the page, deduplicated by the fingerprint; its summary lines are the detail.
    """
    triage = dict(incident.triage or {})
    failure_class = str(triage.get("failure_class", "unclassified"))
    if incident.nodes:
        first = incident.nodes[0]
        subject = f"{first.resource_type} {first.name}"
        if len(incident.nodes) > 1:
            subject += f" and {len(incident.nodes) - 1} more"
    else:
        subject = f"task {incident.task_id or 'unknown'}"
    lines = [str(triage.get("summary") or "No error text was captured.")]
    root_cause = triage.get("root_cause") or {}
    if root_cause:
        lines.append(f"Root cause: {root_cause.get('message')}")
    if triage.get("action"):
        lines.append(f"Recommended action: {triage['action']}. {triage.get('description', '')}".strip())
    if triage.get("signal") and triage.get("signal") != "none":
        lines.append(
            f"Classified by {triage['signal']} (confidence {float(triage.get('confidence') or 0):.2f})"
        )
    lines.append(
        f"Pipeline {incident.pipeline}, run {incident.run_id}, task {incident.task_id}, try {incident.try_number}"
    )
    if incident.blocked_nodes:
        names = ", ".join(node.name for node in incident.blocked_nodes[:BLOCKED_NODES_SHOWN])
        more = len(incident.blocked_nodes) - BLOCKED_NODES_SHOWN
        lines.append(f"Blocked dbt nodes: {names}" + (f" and {more} more" if more > 0 else ""))
    lines.append(f"Incident {incident.incident_id}, failed at {incident.failed_at}")
    lines += [f"Missing: {note}" for note in incident.missing]
    return Page(
        title=f"dbt run failed in {incident.environment}: {subject} ({failure_class})",
        severity="error",
        dedup_key=incident.fingerprint,
        sections=(("Summary", format_lines(lines)),),
        details={
            "incident_id": incident.incident_id,
            "pipeline": incident.pipeline,
            "run_id": incident.run_id,
            "task_id": incident.task_id,
            "try_number": incident.try_number,
            "node": incident.nodes[0].unique_id if incident.nodes else None,
            "failure_class": failure_class,
            "action": triage.get("action"),
            "error_code": triage.get("error_code"),
            "triage_signal": triage.get("signal"),
            "environment": incident.environment,
            "git_sha": incident.git_sha,
        },
        source=f"airflow-selfheal ({incident.environment})",
        component=incident.nodes[0].unique_id if incident.nodes else incident.task_id,
        group=incident.pipeline,
    )
