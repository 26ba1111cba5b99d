"""The repair DAG's pages and the approval body: the proposal, an escalation, and the resolve."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.pages.render import Page

if TYPE_CHECKING:
    from collections.abc import Mapping


def approval_body(incident: Mapping[str, Any], triage: Mapping[str, Any], proposal: Mapping[str, Any]) -> str:
    """
    The approval's markdown: diagnosis, diff, validation and data diff.

    :return: markdown for ``ApprovalOperator(body=...)``.
    """
    root_cause = triage.get("root_cause") or {}
    lines = [
        "### Diagnosis",
        f"- Failure: `{triage.get('failure_class')}` in pipeline `{incident.get('pipeline')}`, "
        f"task `{incident.get('task_id')}`",
        f"- {triage.get('summary') or ''}",
    ]
    if root_cause:
        lines.append(f"- Root cause: {root_cause.get('message')}")
    lines += [
        f"- Fix: `{proposal.get('fix_type')}` (tier **{proposal.get('tier')}**)",
        "",
        str(proposal.get("rationale") or ""),
        "",
        "### Diff",
        "```diff",
        str(proposal.get("diff") or "").rstrip(),
        "```",
        "### Validation (in the clone)",
    ]
    validation = proposal.get("validation") or {}
    lines.append(
        f"`dbt build --select {validation.get('select')}`: passed, {validation.get('attempt')}, "
        f"{validation.get('elapsed_seconds')}s"
    )
    lines += [f"- `{node['unique_id']}`: {node['status']}" for node in validation.get("nodes", [])]
    lines += [
        "",
        "### Data diff (clone vs prod)",
        "| relation | status | clone rows | prod rows |",
        "|---|---|---|---|",
    ]
    for name, item in sorted(((proposal.get("data_diff") or {}).get("relations") or {}).items()):
        clone_rows = (item.get("clone") or {}).get("row_count")
        prod_rows = (item.get("prod") or {}).get("row_count")
        lines.append(f"| {name} | {item.get('status')} | {clone_rows} | {prod_rows} |")
    lines += ["", f"Incident `{incident.get('incident_id')}`; nothing reaches production before approval."]
    return "\n".join(lines)


def proposal_page(
    incident: Mapping[str, Any], triage: Mapping[str, Any], proposal: Mapping[str, Any], link: str | None
) -> Page:
    """The page asking on-call to approve: dedup key the fingerprint, the approval link, the diff."""
    nodes = incident.get("nodes") or [{}]
    return Page(
        title=f"selfheal fix ready for approval: {nodes[0].get('name')} ({triage.get('failure_class')})",
        severity="error",
        dedup_key=str(incident["fingerprint"]),
        sections=(
            ("Diagnosis", str(triage.get("summary") or "")),
            (
                "Proposal",
                f"{proposal.get('fix_type')} ({proposal.get('tier')} tier)\n{proposal.get('rationale')}",
            ),
            ("Diff", str(proposal.get("diff") or "")),
        ),
        details={
            "incident_id": incident["incident_id"],
            "fix_type": proposal.get("fix_type"),
            "tier": proposal.get("tier"),
            "changed_files": list(proposal.get("changed_files") or ()),
            "approval_link": link,
        },
        links=(("Approve in Airflow", link),) if link else (),
        component=str(nodes[0].get("name")),
        group=str(incident.get("pipeline")),
    )


def escalation_page(
    incident: Mapping[str, Any], reason: str, logs: str = "", failed_step: str | None = None
) -> Page:
    """
    The page for a person to take over: the reason and the failure's logs.

    :param failed_step: the repair step that crashed, named in the title, or None for a decided escalation.
    """
    title = f"selfheal escalation: {incident.get('pipeline')} needs a person"
    if failed_step:
        title += f" (repair step {failed_step} failed)"
    details: dict[str, Any] = {"incident_id": incident["incident_id"], "reason": reason}
    if failed_step:
        details["failed_step"] = failed_step
    sections = [("Why", reason), ("Error", str(incident.get("error") or "")), ("Logs", logs)]
    sections += [(heading, body) for heading, body in escalation_facts(incident) if body]
    return Page(
        title=title,
        severity="critical",
        dedup_key=str(incident["fingerprint"]),
        sections=tuple(sections),
        details=details,
        group=str(incident.get("pipeline")),
    )


def escalation_facts(incident: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Extra sections an escalation carries for incidents outside a dbt model: the task, what it blocked."""
    facts: list[tuple[str, str]] = []
    nodes = incident.get("nodes") or ()
    if not nodes and incident.get("task_id"):
        facts.append(("Failed task", str(incident.get("task_id"))))
    blocked = list(incident.get("blocked_nodes") or ())
    if blocked:
        facts.append(("Blocked dbt nodes", ", ".join(str(node.get("unique_id")) for node in blocked)))
    freshness = incident.get("freshness") or {}
    if freshness:
        facts.append(("Source freshness", freshness_text(freshness)))
    return facts


def freshness_text(freshness: Mapping[str, Any]) -> str:
    """One line per fact of a freshness failure: source, loaded_at field, max loaded_at, age and threshold."""
    lines = [f"source: {freshness.get('unique_id') or freshness.get('source')}"]
    for key, label in (
        ("loaded_at_field", "loaded_at field"),
        ("max_loaded_at", "max loaded_at"),
        ("age", "age"),
        ("threshold", "threshold"),
        ("status", "status"),
    ):
        if freshness.get(key) not in (None, ""):
            lines.append(f"{label}: {freshness[key]}")
    return "\n".join(lines)


def resolved_page(incident: Mapping[str, Any]) -> Page:
    """The PagerDuty ``resolve`` of the incident's page (same dedup key: the fingerprint)."""
    return Page(title="selfheal: resolved", severity="info", dedup_key=str(incident["fingerprint"]))
