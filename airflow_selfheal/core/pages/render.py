"""What on-call receives: one page, rendered for PagerDuty Events v2 and for Slack, within their limits.

Everything leaving the process passes :func:`airflow_selfheal.core.redaction.redact_obj` here, so no caller
can forget it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.redaction import redact, redact_obj

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty truncates summaries at 1024 characters; Slack caps header text at 150, section text at 3000,
# a message at 50 blocks, and the fallback text at 40,000 (4,000 is the advised maximum).
PAGERDUTY_SUMMARY_LIMIT = 1024
SLACK_HEADER_LIMIT = 150
SLACK_SECTION_LIMIT = 3000
SLACK_TEXT_LIMIT = 4000
SLACK_MAX_BLOCKS = 50
TRUNCATION_MARK = "… [truncated]"


def clip(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(TRUNCATION_MARK))] + TRUNCATION_MARK


@dataclass(frozen=True)
class Page:
    """
    One notification to on-call.

    :param title: one line, e.g. ``dbt run failed in prod: model stg_orders (missing_column)``.
    :param severity: ``critical``, ``error``, ``warning`` or ``info``.
    :param dedup_key: the fingerprint; PagerDuty groups events by it and we send once per key.
    :param sections: ordered ``(heading, body)`` pairs; bodies may be long (diffs, logs) and are clipped.
    :param details: structured facts for PagerDuty's ``custom_details``.
    :param links: ``(text, url)`` pairs, e.g. the approval link.
    :param source: the system with the problem (PagerDuty ``source``).
    :param component: the part that broke, e.g. the dbt model.
    :param group: a grouping, e.g. the pipeline DAG id.
    """

    title: str
    severity: str
    dedup_key: str
    sections: tuple[tuple[str, str], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()
    source: str = "airflow-selfheal"
    component: str | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if not self.dedup_key:
            raise ValueError("a page needs a dedup_key (the fingerprint)")


def pagerduty_event(page: Page, action: str = "trigger") -> dict[str, Any]:
    """Keyword arguments for the PagerDuty provider's ``prepare_event_data``; redacted and clipped."""
    event: dict[str, Any] = {
        "summary": clip(redact(page.title), PAGERDUTY_SUMMARY_LIMIT),
        "severity": page.severity,
        "source": page.source,
        "action": action,
        "dedup_key": page.dedup_key,
    }
    if action == "trigger":
        # Redact before clipping: a cut through a secret could hide it from the patterns.
        details = redact_obj(dict(page.details))
        for heading, body in page.sections:
            details[heading] = clip(redact(body), SLACK_SECTION_LIMIT * 4)
        event["custom_details"] = details
        if page.links:
            event["links"] = [{"href": href, "text": text} for text, href in page.links]
        if page.component:
            event["component"] = page.component
        if page.group:
            event["group"] = page.group
    return event


def _section_block(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, SLACK_SECTION_LIMIT)}}


def slack_message(page: Page) -> dict[str, Any]:
    """A Slack webhook body (``text`` fallback plus Block Kit ``blocks``); redacted and within limits."""
    title = redact(page.title)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(title, SLACK_HEADER_LIMIT)}}
    ]
    facts = [f"*{key}:* {value}" for key, value in redact_obj(dict(page.details)).items() if _is_short(value)]
    if facts:
        blocks.append(_section_block("\n".join(facts)))
    for heading, body in page.sections:
        body = redact(body)
        fenced = body if not _looks_like_code(body) else f"```{clip(body, SLACK_SECTION_LIMIT - 40)}```"
        blocks.append(_section_block(f"*{heading}*\n{fenced}"))
    if page.links:
        links = " | ".join(f"<{href}|{text}>" for text, href in page.links)
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": clip(links, 2000)}]})
    if len(blocks) > SLACK_MAX_BLOCKS:
        blocks = [
            *blocks[: SLACK_MAX_BLOCKS - 1],
            _section_block(f"{len(blocks) - SLACK_MAX_BLOCKS + 1} more"),
        ]
    text = clip(f"[{page.severity}] {title}", SLACK_TEXT_LIMIT)
    return {"text": text, "blocks": blocks}


def _is_short(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200


def _looks_like_code(body: str) -> bool:
    return "\n" in body and not body.startswith("```")


def format_lines(lines: Sequence[str]) -> str:
    """Join bullet lines for a section body."""
    return "\n".join(f"• {line}" for line in lines)
