"""The repair DAG's pages and the approval body: the proposal, an escalation, and the resolve."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.pages.render import Page

if TYPE_CHECKING:
    from collections.abc import Sequence


#: Node statuses of a ``dbt build`` that count as passed without a mention, and those that failed it.
OK_STATUSES = frozenset({"success", "pass"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
#: Most nodes listed by name (the ones not ``success``/``pass``), and most data-diff rows.
NODE_LIST_LIMIT = 10
RELATION_LIMIT = 15
#: Characters kept of the rationale, of one inline value, and of a recorded reason.
RATIONALE_LIMIT = 300
VALUE_LIMIT = 200
REASON_LIMIT = 160
#: How a resource type's passing nodes are counted: (noun, verb).
_COUNTED = {
    "model": ("model", "built"),
    "seed": ("seed", "loaded"),
    "snapshot": ("snapshot", "built"),
    "test": ("test", "passed"),
    "unit_test": ("unit test", "passed"),
}
#: Data-diff rows with something to look at come first.
_STATUS_ORDER = {"error": 0, "missing_in_clone": 1, "changed": 2, "new": 3, "same": 4}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: What could start markup inside a line: an ``_`` between two letters or digits cannot, so it stays as is.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*\[\]<|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def approval_body(
    incident: Mapping[str, Any],
    triage: Mapping[str, Any],
    proposal: Mapping[str, Any],
    *,
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """
    The approval's markdown, for the person deciding on the Required Action page.

    A short diagnosis (with the head of the fix's rationale), the diff, the validation's counts (naming only the
    nodes that did not pass), the data diff in words, then the incident id and ``links``. Every value comes from
    error messages and project files: inline values are one line in a code span that fits them, and prose is
    one line with markdown's punctuation escaped, so no value can change the page's structure.

    :param incident: the incident's dict.
    :param triage: the triage's dict.
    :param proposal: the validated proposal (``ValidationOutcome.dump()``).
    :param links: ``(label, url)`` pairs listed at the end, e.g. the repair run in Airflow.
    :return: markdown for ``ApprovalOperator(body=...)``.
    """
    lines = _diagnosis(incident, triage, proposal)
    lines += ["", "### Diff", *_fenced(str(proposal.get("diff") or "").rstrip("\n"), "diff")]
    lines += ["", "### Validation (in the clone)", *_validation(proposal.get("validation") or {})]
    lines += ["", "### Data diff (clone vs prod)", *_data_diff(incident, proposal.get("data_diff") or {})]
    lines += [
        "",
        "---",
        f"Incident {_code(incident.get('incident_id'))}; nothing reaches production before approval.",
    ]
    lines += [_link(label, url) for label, url in links if url]
    return "\n".join(lines)


# -- sections ----------------------------------------------------------------------------------------------


def _diagnosis(
    incident: Mapping[str, Any], triage: Mapping[str, Any], proposal: Mapping[str, Any]
) -> list[str]:
    failed = f"Failure: {_code(triage.get('failure_class'))}"
    if triage.get("signal") and triage.get("signal") != "none":
        failed += f" (by {_text(triage.get('signal'), 80)})"
    nodes = [node for node in incident.get("nodes") or () if isinstance(node, Mapping)]
    if nodes:
        kind = str(nodes[0].get("resource_type") or "node")
        names = ", ".join(_code(node.get("name") or node.get("unique_id")) for node in nodes[:3])
        more = f" and {len(nodes) - 3} more" if len(nodes) > 3 else ""
        failed += f" in {kind}{'s' if len(nodes) > 1 else ''} {names}{more}"
    if incident.get("task_id"):
        failed += f" (task {_code(incident.get('task_id'))})"
    lines = ["### Diagnosis", f"- {failed}, pipeline {_code(incident.get('pipeline'))}"]
    if triage.get("summary"):
        lines.append(f"- Summary: {_text(triage.get('summary'))}")
    root_cause = triage.get("root_cause") or {}
    if isinstance(root_cause, Mapping) and root_cause.get("message"):
        lines.append(f"- Root cause: {_text(root_cause.get('message'))}")
    lines.append(f"- Fix: {_code(proposal.get('fix_type'))} (tier **{_text(proposal.get('tier'), 40)}**)")
    rationale = _first_sentences(_one_line(proposal.get("rationale")), RATIONALE_LIMIT)
    if rationale:
        lines.append(f"- Why this fix: {_escape(rationale)}")
    return lines


def _validation(validation: Mapping[str, Any]) -> list[str]:
    nodes = [node for node in validation.get("nodes") or () if isinstance(node, Mapping)]
    statuses = [str(node.get("status") or "unknown").lower() for node in nodes]
    failed = sum(status in FAILED_STATUSES for status in statuses)
    passed = failed == 0 and validation.get("success", True) is not False
    elapsed = validation.get("elapsed_seconds")
    when = ", ".join(
        part
        for part in (
            _text(validation.get("attempt"), 40) if validation.get("attempt") else "",
            f"{elapsed}s" if isinstance(elapsed, int | float) else "",
        )
        if part
    )
    command = _code(f"dbt build --select {validation.get('select') or ''}".rstrip())
    lines = [f"- {command}: **{'passed' if passed else 'failed'}**" + (f" ({when})" if when else "")]
    lines.append(f"- {_counts(nodes, statuses, failed)}")
    noted = sorted(
        (index for index, status in enumerate(statuses) if status not in OK_STATUSES),
        key=lambda index: (_status_rank(statuses[index]), index),
    )
    if noted:
        lines.append("- Not passed:")
        for index in noted[:NODE_LIST_LIMIT]:
            lines.append(f"  - {_code(nodes[index].get('unique_id'))}: {_text(statuses[index], 40)}")
        if len(noted) > NODE_LIST_LIMIT:
            lines.append(f"  - and {len(noted) - NODE_LIST_LIMIT} more")
    return lines


def _counts(nodes: Sequence[Mapping[str, Any]], statuses: Sequence[str], failed: int) -> str:
    """``8 models built, 33 tests passed, 0 failed, 0 warned`` (skipped and other statuses only when present)."""
    if not nodes:
        return "no nodes reported"
    done: dict[str, int] = {}
    for node, status in zip(nodes, statuses, strict=True):
        if status in OK_STATUSES:
            kind = str(node.get("unique_id") or "").split(".", 1)[0] or "node"
            done[kind] = done.get(kind, 0) + 1
    ordered = [kind for kind in _COUNTED if kind in done] + sorted(
        kind for kind in done if kind not in _COUNTED
    )
    parts = []
    for kind in ordered:
        noun, verb = _COUNTED.get(kind, (f"{_escape(kind[:40])} node", "succeeded"))
        parts.append(f"{done[kind]} {noun}{'' if done[kind] == 1 else 's'} {verb}")
    warned = statuses.count("warn")
    skipped = statuses.count("skipped")
    other = len(statuses) - sum(done.values()) - failed - warned - skipped
    parts += [f"{failed} failed", f"{warned} warned"]
    if skipped:
        parts.append(f"{skipped} skipped")
    if other:
        parts.append(f"{other} with another status")
    return ", ".join(parts)


def _status_rank(status: str) -> int:
    if status in FAILED_STATUSES:
        return 0
    return {"warn": 1, "skipped": 2}.get(status, 3)


def _data_diff(incident: Mapping[str, Any], diff: Mapping[str, Any]) -> list[str]:
    relations = diff.get("relations") or {}
    if not isinstance(relations, Mapping) or not relations:
        return ["No relation was compared."]
    failed = {
        str(node.get("name") or "").upper()
        for node in incident.get("nodes") or ()
        if isinstance(node, Mapping) and node.get("name")
    }
    entries = sorted(
        ((str(name), item if isinstance(item, Mapping) else {}) for name, item in relations.items()),
        key=lambda pair: (_STATUS_ORDER.get(str(pair[1].get("status")), 5), pair[0]),
    )
    lines = ["| relation | result | clone rows | prod rows |", "|---|---|---|---|"]
    for name, item in entries[:RELATION_LIMIT]:
        is_failed = name.rsplit(".", 1)[-1].strip('"').upper() in failed
        cells = (
            _code(name, table=True),
            _relation_result(item, is_failed),
            _rows(item.get("clone")),
            _rows(item.get("prod")),
        )
        lines.append("| " + " | ".join(cells) + " |")
    if len(entries) > RELATION_LIMIT:
        lines += ["", f"… and {len(entries) - RELATION_LIMIT} more relations (all in the evidence)."]
    return lines


def _relation_result(item: Mapping[str, Any], is_failed: bool) -> str:
    """One data-diff status in words."""
    status = str(item.get("status"))
    clone, prod = item.get("clone"), item.get("prod")
    if status == "same":
        return "same row count and columns"
    if status == "new":
        return "new: not in prod"
    if status == "missing_in_clone":
        return "not built in the clone"
    if status == "changed":
        return "changed: " + "; ".join(_changes(item))
    if status == "error":
        unread = []
        for side, name in ((clone, "clone"), (prod, "prod")):
            if isinstance(side, Mapping) and side.get("error"):
                unread.append((name, side.get("error")))
        if not unread:
            return "could not be compared"
        words = []
        for name, reason in unread:
            text = f"{name} unreadable"
            if name == "prod" and is_failed:
                text += ": it is the relation that failed"
            words.append(f"{text} ({_code(reason, REASON_LIMIT, table=True)})")
        return "; ".join(words)
    return _text(status, 40)


def _changes(item: Mapping[str, Any]) -> list[str]:
    changes = []
    delta = item.get("row_count_delta")
    if isinstance(delta, int) and delta:
        changes.append(f"{delta:+d} row{'' if abs(delta) == 1 else 's'}")
    for key, label in (("columns_added", "added"), ("columns_removed", "removed")):
        columns = [str(column) for column in item.get(key) or ()]
        if columns:
            changes.append(f"{label} {_names(columns)}")
    types = item.get("type_changes") or {}
    if isinstance(types, Mapping) and types:
        changes.append(f"type changed {_names([str(column) for column in types])}")
    return changes or ["columns or types differ"]


def _names(values: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(_code(value, 60, table=True) for value in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _rows(side: Any) -> str:
    if side is None:
        return "absent"
    if isinstance(side, Mapping) and isinstance(side.get("row_count"), int):
        return str(side["row_count"])
    return "unreadable" if isinstance(side, Mapping) and side.get("error") else "unknown"


def _link(label: str, url: str) -> str:
    """``- [label](<url>)`` for a web address; anything else (``s3://``, ``file://``) as code, not a link."""
    url = str(url)
    if url.startswith(("https://", "http://")) and not re.search(r"[\s<>]", url):
        return f"- [{_text(label, 80)}](<{url}>)"
    return f"- {_text(label, 80)}: {_code(url, 500)}"


# -- hostile text ------------------------------------------------------------------------------------------


def _one_line(value: Any) -> str:
    """The value as one line: any run of whitespace (newlines included) becomes one space."""
    return " ".join(str(value if value is not None else "").split())


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _escape(text: str) -> str:
    r"""Markdown's punctuation backslash-escaped (``*`` -> ``\*``): shown as typed, never as markup."""
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)


def _text(value: Any, limit: int = 500) -> str:
    """Prose from a message or a file: one line, cut to ``limit``, escaped."""
    return _escape(_clip(_one_line(value), limit))


def _code(value: Any, limit: int = VALUE_LIMIT, *, table: bool = False) -> str:
    r"""
    An inline code span of the value: one line, cut to ``limit``, fenced by more backticks than it holds.

    :param table: for a table cell: every ``|`` escaped as ``\|`` (GFM's pipe in a cell, code spans included),
        with a space after a backslash of the value's own that would otherwise escape the escape.
    :return: the span; ``—`` for ``None`` or an empty value.
    """
    text = _clip(_one_line(value), limit)
    if not text:
        return "—"
    if table:
        text = text.replace("\\|", "\\ |").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _fenced(text: str, info: str) -> list[str]:
    """A fenced code block of ``text``, its fence longer than any backtick run that opens one of its lines."""
    if not text.strip():
        return ["(empty)"]
    runs = [len(match.group(1)) for match in re.finditer(r"^ {0,3}(`{3,})", text, re.MULTILINE)]
    fence = "`" * max([3, *(run + 1 for run in runs)])
    return [f"{fence}{info}", text, fence]


def _first_sentences(text: str, limit: int, sentences: int = 2) -> str:
    """The first ``sentences`` sentences of ``text`` that fit in ``limit``; a first one too long is cut at a word."""
    if len(text) <= limit and len(_SENTENCE_END.split(text)) <= sentences:
        return text
    kept = ""
    for sentence in _SENTENCE_END.split(text)[:sentences]:
        joined = f"{kept} {sentence}".strip()
        if len(joined) > limit:
            break
        kept = joined
    if kept:
        return kept + " …" if kept != text else kept
    head = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return head.rstrip() + "…"


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
