"""Deliver one :class:`~airflow_selfheal.core.pages.render.Page` to Slack and PagerDuty, once per dedup key.

A delivery failure is reported, not raised: paging must never block the repair loop or the approval step.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.pages.render import Page, pagerduty_event, slack_message
from airflow_selfheal.core.redaction import redact

if TYPE_CHECKING:
    from airflow_selfheal.hooks.artifacts import ArtifactStore

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    """What happened to one page: per channel ``sent``, ``failed: <why>``, or ``skipped``."""

    dedup_key: str
    duplicate: bool = False
    channels: dict[str, str] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        """Whether at least one channel accepted the page."""
        return any(outcome == "sent" for outcome in self.channels.values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, for XCom and the audit trail."""
        return {"dedup_key": self.dedup_key, "duplicate": self.duplicate, "channels": dict(self.channels)}


def _slack_retry_handlers() -> list[Any]:
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    return [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def send_slack(page: Page, slack_conn_id: str) -> None:
    """Post ``page`` through the Slack provider's webhook hook (with retries on 429, 5xx and resets)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=slack_conn_id, retry_handlers=_slack_retry_handlers())
    hook.send_dict(slack_message(page))


def send_pagerduty(page: Page, pagerduty_conn_id: str, action: str = "trigger") -> None:
    """Send ``page`` to PagerDuty Events v2 as ``action`` with its dedup key."""
    from airflow_selfheal.hooks.pagerduty import SelfhealPagerdutyEventsHook

    SelfhealPagerdutyEventsHook(pagerduty_events_conn_id=pagerduty_conn_id).send_event(
        **pagerduty_event(page, action)
    )


def deliver(
    page: Page,
    *,
    slack_conn_id: str | None = None,
    pagerduty_conn_id: str | None = None,
    store: ArtifactStore | None = None,
    scope: str = "pages",
) -> DeliveryReport:
    """
    Send ``page`` on each configured channel, once per ``(scope, dedup_key)`` when ``store`` is given.

    The dedup marker is claimed before sending and released if every channel failed, so a later attempt can
    still page. Two workers racing on the same key send once: the marker is created exclusively.

    :param page: what to send.
    :param slack_conn_id: a ``slackwebhook`` connection, or None to skip Slack.
    :param pagerduty_conn_id: a ``pagerduty_events`` connection, or None to skip PagerDuty.
    :param store: where dedup markers live; None sends unconditionally.
    :param scope: namespace of the dedup key, e.g. ``drift`` or ``failures``.
    :return: the per-channel outcome.
    """
    report = DeliveryReport(dedup_key=page.dedup_key)
    marker = f"notifications/{scope}/{page.dedup_key}.json"
    if store is not None and not store.create_json(
        marker, {"claimed_at": datetime.now(timezone.utc).isoformat(), "title": redact(page.title)}
    ):
        report.duplicate = True
        log.info("Page %s already sent for %s; not sending again", scope, page.dedup_key)
        return report
    channels = {"slack": slack_conn_id, "pagerduty": pagerduty_conn_id}
    for channel, conn_id in channels.items():
        if not conn_id:
            report.channels[channel] = "skipped"
            continue
        try:
            if channel == "slack":
                send_slack(page, conn_id)
            else:
                send_pagerduty(page, conn_id)
        except Exception as exc:  # noqa: BLE001 - one channel failing must not stop the other, nor the loop
            reason = redact(f"{type(exc).__name__}: {exc}")[:300]
            report.channels[channel] = f"failed: {reason}"
            log.warning("Could not deliver page %s to %s: %s", page.dedup_key, channel, reason)
        else:
            report.channels[channel] = "sent"
    if store is not None:
        if report.delivered or all(outcome == "skipped" for outcome in report.channels.values()):
            store.path(marker).write_text(
                json.dumps({"title": redact(page.title), **report.to_dict()}, indent=2)
            )
        else:
            store.path(marker).unlink()
    return report
