"""Deliver one :class:`~airflow_selfheal.core.pages.render.Page` to Slack and PagerDuty, once per dedup key.

A delivery failure is reported, not raised: paging must never block the repair loop or the approval step.

Every string of what is sent passes :mod:`~airflow_selfheal.core.redaction` here, at the last step before the
hook sends it: the page's fields, links included, before rendering, then the rendered Slack body or PagerDuty
event as a whole. A delivery error is redacted with the channel connection's own secrets (the webhook token, the
routing key) before it is logged or recorded.

Sending once across workers rests on write-once records under ``<artifacts_root>/notifications/<scope>/<key>/``::

    claim-000001.json      the claim on attempt 1, created exclusively before anything is sent
    outcome-000001.json    what attempt 1 did on each channel, created once after sending
    claim-000002.json      attempt 2, claimed only because outcome 1 says every channel failed
    ...

A worker claims the attempt after the latest one, and only when that latest attempt has an outcome in which
every configured channel failed; of two workers racing for the same number one wins, the other reports a
duplicate. A claim without an outcome is an attempt in flight (or one whose worker died while sending): the page
is not sent again, as a second page is worse than a lost one. No record is ever rewritten or removed.

A store written by 0.1.0 holds one marker per key instead, ``notifications/<scope>/<key>.json``, rewritten
with the outcome after sending and removed when every channel failed; a key with such a marker counts as sent.
Claims and outcomes carry a ``schema_version`` (:mod:`airflow_selfheal.core.schema`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.pages.render import Page, pagerduty_event, slack_message
from airflow_selfheal.core.redaction import redact, redact_obj, secrets_of_connection
from airflow_selfheal.core.schema import RecordVersionError, check, stamp
from airflow_selfheal.hooks.artifacts import ArtifactCorruptError

if TYPE_CHECKING:
    from airflow_selfheal.hooks.artifacts import ArtifactStore

log = logging.getLogger(__name__)

NOTIFICATIONS_FOLDER = "notifications"
_CLAIM = re.compile(r"claim-(?P<number>\d{6,})\.json")


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


def redacted_page(page: Page) -> Page:
    """
    ``page`` with every text field redacted: title, sections, details, links (text and URL), source, component.

    Rendering clips long fields, and a cut through a secret could hide it from the patterns, so the page is
    redacted before it is rendered. The dedup key is the fingerprint and is kept as it is.

    :param page: the page as built.
    :return: a copy; the wording of the page is unchanged except for the secrets.
    """
    return dataclasses.replace(
        page,
        title=redact(page.title),
        sections=tuple((redact(heading), redact(body)) for heading, body in page.sections),
        details=redact_obj(dict(page.details)),
        links=tuple((redact(text), redact(href)) for text, href in page.links),
        source=redact(page.source),
        component=None if page.component is None else redact(page.component),
        group=None if page.group is None else redact(page.group),
    )


def slack_payload(page: Page) -> dict[str, Any]:
    """The Slack webhook body of ``page``, every string redacted: the page's fields, then the whole body."""
    payload: dict[str, Any] = redact_obj(slack_message(redacted_page(page)))
    return payload


def pagerduty_payload(page: Page, action: str = "trigger") -> dict[str, Any]:
    """The PagerDuty event of ``page`` (``prepare_event_data`` arguments), every string redacted, links too."""
    payload: dict[str, Any] = redact_obj(pagerduty_event(redacted_page(page), action))
    return payload


def send_slack(page: Page, slack_conn_id: str) -> None:
    """Post ``page`` through the Slack provider's webhook hook (with retries on 429, 5xx and resets)."""
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    hook = SlackWebhookHook(slack_webhook_conn_id=slack_conn_id, retry_handlers=_slack_retry_handlers())
    hook.send_dict(slack_payload(page))


def send_pagerduty(page: Page, pagerduty_conn_id: str, action: str = "trigger") -> None:
    """Send ``page`` to PagerDuty Events v2 as ``action`` with its dedup key."""
    from airflow_selfheal.hooks.pagerduty import SelfhealPagerdutyEventsHook

    SelfhealPagerdutyEventsHook(pagerduty_events_conn_id=pagerduty_conn_id).send_event(
        **pagerduty_payload(page, action)
    )


def _channel_secrets(conn_id: str) -> list[str]:
    """The secrets of a channel's connection, to keep them out of its delivery errors; none if unreadable."""
    try:
        from airflow.providers.common.compat.sdk import BaseHook

        return secrets_of_connection(BaseHook.get_connection(conn_id))
    except Exception as exc:
        log.debug("Could not read connection %s to redact its secrets: %s", conn_id, exc)
        return []


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

    The attempt is claimed before sending and its outcome recorded after (see the module docstring), so two
    workers racing on the same key send once, and if every channel failed a later attempt can still page.

    :param page: what to send.
    :param slack_conn_id: a ``slackwebhook`` connection, or None to skip Slack.
    :param pagerduty_conn_id: a ``pagerduty_events`` connection, or None to skip PagerDuty.
    :param store: where the claims and outcomes live; None sends unconditionally.
    :param scope: namespace of the dedup key, e.g. ``drift`` or ``failures``.
    :return: the per-channel outcome.
    """
    report = DeliveryReport(dedup_key=page.dedup_key)
    attempt = _claim(store, page, scope) if store is not None else None
    if store is not None and attempt is None:
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
            reason = redact(f"{type(exc).__name__}: {exc}", extra_secrets=_channel_secrets(conn_id))[:300]
            report.channels[channel] = f"failed: {reason}"
            log.warning("Could not deliver page %s to %s: %s", page.dedup_key, channel, reason)
        else:
            report.channels[channel] = "sent"
    if store is not None and attempt is not None:
        _record_outcome(store, page, scope, attempt, report)
    return report


def attempts_folder(scope: str, dedup_key: str) -> str:
    """Where the claims and outcomes of one key live, relative to the artifacts root."""
    return f"{NOTIFICATIONS_FOLDER}/{scope}/{dedup_key}"


def legacy_marker(scope: str, dedup_key: str) -> str:
    """The dedup marker 0.1.0 wrote for one key, relative to the artifacts root."""
    return f"{NOTIFICATIONS_FOLDER}/{scope}/{dedup_key}.json"


def delivery_attempts(store: ArtifactStore, dedup_key: str, scope: str = "pages") -> list[dict[str, Any]]:
    """
    The delivery attempts of one key, oldest first.

    :param store: the artifacts store.
    :param dedup_key: the page's dedup key.
    :param scope: its namespace.
    :return: one item per attempt: ``attempt`` (its number; 0 for a marker of 0.1.0), ``claim`` (the claim
        record) and ``outcome`` (the outcome record, None while in flight or if its worker died).
    :raises ArtifactCorruptError: naming an unreadable record.
    :raises RecordVersionError: for a record a newer release wrote.
    """
    attempts: list[dict[str, Any]] = []
    legacy = legacy_marker(scope, dedup_key)
    if store.exists(legacy):
        marker = _read(store, legacy, "page_marker")
        # 0.1.0 rewrote the claim ({claimed_at, title}) with the outcome ({title, dedup_key, channels, ...}).
        attempts.append({"attempt": 0, "claim": marker, "outcome": marker if "channels" in marker else None})
    folder = attempts_folder(scope, dedup_key)
    for number in _claim_numbers(store, folder):
        outcome_path = f"{folder}/outcome-{number:06d}.json"
        attempts.append(
            {
                "attempt": number,
                "claim": _read(store, f"{folder}/claim-{number:06d}.json", "page_claim"),
                "outcome": _read(store, outcome_path, "page_outcome") if store.exists(outcome_path) else None,
            }
        )
    return attempts


def _claim(store: ArtifactStore, page: Page, scope: str) -> int | None:
    """Claim the next attempt; None when the page was sent, is being sent, or another worker won the claim."""
    if store.exists(legacy_marker(scope, page.dedup_key)):
        return None
    folder = attempts_folder(scope, page.dedup_key)
    latest = max(_claim_numbers(store, folder), default=0)
    if latest:
        outcome_path = f"{folder}/outcome-{latest:06d}.json"
        if not store.exists(outcome_path):
            return None  # in flight, or its worker died while sending: a second page is worse than none
        try:
            outcome = _read(store, outcome_path, "page_outcome")
        except (ArtifactCorruptError, RecordVersionError) as exc:
            log.error("Not sending page %s again: its last outcome is unreadable: %s", page.dedup_key, exc)
            return None
        if outcome.get("retryable") is not True:
            return None
    number = latest + 1
    claim = {
        "attempt": number,
        "dedup_key": page.dedup_key,
        "title": redact(page.title),
        "claimed_at": datetime.now(timezone.utc).isoformat(),
    }
    if store.create_json(f"{folder}/claim-{number:06d}.json", stamp(claim, "page_claim")):
        return number
    return None


def _record_outcome(
    store: ArtifactStore, page: Page, scope: str, attempt: int, report: DeliveryReport
) -> None:
    """Record what the attempt did; retryable when no channel took the page and at least one failed."""
    retryable = not report.delivered and any(outcome != "skipped" for outcome in report.channels.values())
    outcome = {
        "attempt": attempt,
        "title": redact(page.title),
        **report.to_dict(),
        "delivered": report.delivered,
        "retryable": retryable,
        "finished_at": datetime.now(timezone.utc).isoformat(),
    }
    relative = f"{attempts_folder(scope, page.dedup_key)}/outcome-{attempt:06d}.json"
    if not store.create_json(relative, stamp(outcome, "page_outcome")):
        # Unreachable while only the claim's winner writes its outcome; keep the first record.
        log.error(
            "The outcome of page %s attempt %d was already recorded; kept as it is", page.dedup_key, attempt
        )


def _claim_numbers(store: ArtifactStore, folder: str) -> list[int]:
    return sorted(int(match["number"]) for name in store.list(folder) if (match := _CLAIM.fullmatch(name)))


def _read(store: ArtifactStore, relative: str, kind: str) -> dict[str, Any]:
    try:
        return check(store.read_json(relative), kind, store.url(relative))
    except ValueError as exc:
        raise store.corrupt(relative, f"is not a page {kind.removeprefix('page_')} record ({exc})") from exc
