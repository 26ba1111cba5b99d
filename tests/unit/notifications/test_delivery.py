"""Delivery through the real Slack provider hook and our PagerDuty hook to a loopback HTTP receiver."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from airflow.models import Connection

from airflow_selfheal.core.pages.render import Page
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.hooks.pagerduty import DeliveryError, SelfhealPagerdutyEventsHook
from airflow_selfheal.notifications.delivery import deliver
from dev.receivers import Receiver, http_receiver

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ROUTING_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with http_receiver() as rec:
        slack = Connection(
            conn_id="slack_test", conn_type="slackwebhook", password=f"{rec.url}/services/T1/B1/XYZ"
        )
        pagerduty = Connection(
            conn_id="pd_test", conn_type="pagerduty_events", host=rec.url, password=ROUTING_KEY
        )
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_TEST", slack.as_json())
        monkeypatch.setenv("AIRFLOW_CONN_PD_TEST", pagerduty.as_json())
        yield rec


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(root=str(tmp_path / "artifacts"), conn_id="")


def _page(key: str = "a" * 64) -> Page:
    return Page(title="drift detected (1 change)", severity="warning", dedup_key=key, details={"n": 1})


class TestDeliver:
    def test_both_channels_receive_one_page(self, receiver: Receiver, store: ArtifactStore) -> None:
        report = deliver(_page(), slack_conn_id="slack_test", pagerduty_conn_id="pd_test", store=store)
        assert report.channels == {"slack": "sent", "pagerduty": "sent"}
        paths = sorted(d.path for d in receiver.deliveries)
        assert paths == ["/services/T1/B1/XYZ", "/v2/enqueue"]
        event = next(d for d in receiver.deliveries if d.path == "/v2/enqueue").json()
        assert event["routing_key"] == ROUTING_KEY
        assert event["dedup_key"] == "a" * 64
        # Events API v2 rejects an event without `event_action` (400), so the key name matters.
        assert event["event_action"] == "trigger"
        assert "action" not in event
        assert event["payload"]["severity"] == "warning"

    def test_same_key_is_sent_once(self, receiver: Receiver, store: ArtifactStore) -> None:
        deliver(_page(), slack_conn_id="slack_test", store=store)
        second = deliver(_page(), slack_conn_id="slack_test", store=store)
        third = deliver(_page("b" * 64), slack_conn_id="slack_test", store=store)
        assert second.duplicate is True
        assert third.channels == {"slack": "sent", "pagerduty": "skipped"}
        assert len(receiver.deliveries) == 2

    def test_failure_is_reported_not_raised_and_key_released(
        self, receiver: Receiver, store: ArtifactStore
    ) -> None:
        receiver.respond_next(400, b'{"status":"invalid event"}')
        report = deliver(_page(), pagerduty_conn_id="pd_test", store=store)
        assert report.channels["pagerduty"].startswith("failed: DeliveryError: PagerDuty answered 400")
        assert ROUTING_KEY not in report.channels["pagerduty"]
        retry = deliver(_page(), pagerduty_conn_id="pd_test", store=store)
        assert retry.channels["pagerduty"] == "sent"


class TestPagerdutyRetries:
    def test_retries_429_and_5xx_then_succeeds(self, receiver: Receiver) -> None:
        receiver.respond_next(429, b"slow down", {"Retry-After": "0"})
        receiver.respond_next(503, b"unavailable")
        hook = SelfhealPagerdutyEventsHook("pd_test", backoff=0)
        answer = hook.send_event(summary="s", severity="error", dedup_key="k")
        assert answer["status"] == "success"
        assert len(receiver.deliveries) == 3

    def test_400_is_not_retried(self, receiver: Receiver) -> None:
        receiver.respond_next(400, b"bad")
        with pytest.raises(DeliveryError, match="answered 400") as excinfo:
            SelfhealPagerdutyEventsHook("pd_test", backoff=0).send_event(summary="s", severity="error")
        assert excinfo.value.retryable is False
        assert len(receiver.deliveries) == 1

    def test_missing_integration_key_names_the_fix(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(
            "AIRFLOW_CONN_PD_EMPTY", Connection(conn_id="pd_empty", conn_type="pagerduty_events").as_json()
        )
        with pytest.raises(DeliveryError, match="no integration key"):
            SelfhealPagerdutyEventsHook("pd_empty").send_event(summary="s", severity="error")
