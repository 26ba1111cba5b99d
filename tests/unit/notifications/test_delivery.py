"""Delivery through the real Slack provider hook and our PagerDuty hook to a loopback HTTP receiver.

The dedup records go to a ``file://`` root and to an ``s3://`` root (moto on loopback): each test runs on both.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from airflow.models import Connection

from airflow_selfheal.core.pages.render import Page
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.hooks.pagerduty import DeliveryError, SelfhealPagerdutyEventsHook
from airflow_selfheal.notifications import delivery
from airflow_selfheal.notifications.delivery import deliver, delivery_attempts
from dev.receivers import Receiver, http_receiver
from dev.s3 import overwrite

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_selfheal.notifications.delivery import DeliveryReport

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
def store(artifact_store: ArtifactStore) -> ArtifactStore:
    return artifact_store


def race(workers: int, send: Callable[[], DeliveryReport]) -> list[DeliveryReport]:
    """``workers`` threads call ``send`` at once; their reports."""
    barrier = threading.Barrier(workers)
    reports: list[DeliveryReport] = []

    def run() -> None:
        barrier.wait()
        reports.append(send())

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


def folder(key: str = "a" * 64, scope: str = "pages") -> str:
    return f"notifications/{scope}/{key}"


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
        assert deliver(_page(), pagerduty_conn_id="pd_test", store=store).duplicate is True
        assert len(receiver.deliveries) == 2


class TestSentOnce:
    def test_racing_workers_send_once(self, receiver: Receiver, store: ArtifactStore) -> None:
        reports = race(6, lambda: deliver(_page(), slack_conn_id="slack_test", store=store))
        assert sorted(report.duplicate for report in reports) == [False] + [True] * 5
        assert len(receiver.deliveries) == 1

    def test_after_every_channel_failed_racing_retries_send_once(
        self, receiver: Receiver, store: ArtifactStore
    ) -> None:
        receiver.respond_next(400, b'{"status":"invalid event"}')
        assert deliver(_page(), pagerduty_conn_id="pd_test", store=store).delivered is False
        reports = race(4, lambda: deliver(_page(), pagerduty_conn_id="pd_test", store=store))
        assert sorted(report.duplicate for report in reports) == [False, True, True, True]
        assert len(receiver.deliveries) == 2  # the failed attempt and one retry

    def test_every_attempt_is_a_claim_and_an_outcome_written_once(
        self, receiver: Receiver, store: ArtifactStore
    ) -> None:
        for _ in range(3):  # the Slack hook's first try and its two retries of a 5xx
            receiver.respond_next(500, b"down")
        key = "c" * 64
        failed = deliver(_page(key), slack_conn_id="slack_test", store=store)
        assert failed.delivered is False
        sent = deliver(_page(key), slack_conn_id="slack_test", store=store)
        assert sent.channels["slack"] == "sent"

        assert store.list(folder(key)) == [
            "claim-000001.json",
            "claim-000002.json",
            "outcome-000001.json",
            "outcome-000002.json",
        ]
        attempts = delivery_attempts(store, key)
        assert [attempt["attempt"] for attempt in attempts] == [1, 2]
        assert attempts[0]["outcome"]["retryable"] is True
        assert attempts[0]["outcome"]["channels"]["slack"].startswith("failed: ")
        assert attempts[1]["outcome"]["delivered"] is True
        assert attempts[1]["outcome"]["retryable"] is False
        assert store.read_json(f"{folder(key)}/claim-000001.json")["schema_version"] == 1
        assert store.read_json(f"{folder(key)}/outcome-000002.json")["schema_version"] == 1

    def test_a_claim_without_an_outcome_is_not_sent_again(
        self, receiver: Receiver, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def killed(page: Page, conn_id: str) -> None:
            raise SystemExit("worker killed while sending")

        monkeypatch.setattr(delivery, "send_slack", killed)
        with pytest.raises(SystemExit):
            deliver(_page(), slack_conn_id="slack_test", store=store)
        monkeypatch.undo()

        assert deliver(_page(), slack_conn_id="slack_test", store=store).duplicate is True
        assert receiver.deliveries == []
        assert [attempt["outcome"] for attempt in delivery_attempts(store, "a" * 64)] == [None]

    def test_a_page_with_no_channel_counts_as_done(self, receiver: Receiver, store: ArtifactStore) -> None:
        assert deliver(_page(), store=store).channels == {"slack": "skipped", "pagerduty": "skipped"}
        assert deliver(_page(), slack_conn_id="slack_test", store=store).duplicate is True
        assert receiver.deliveries == []

    def test_a_marker_written_by_0_1_0_counts_as_sent(self, receiver: Receiver, store: ArtifactStore) -> None:
        store.create_json(f"{folder()}.json", {"claimed_at": "2026-01-01T00:00:00+00:00", "title": "t"})
        assert deliver(_page(), slack_conn_id="slack_test", store=store).duplicate is True
        assert receiver.deliveries == []
        assert delivery_attempts(store, "a" * 64)[0]["attempt"] == 0

    def test_an_unreadable_last_outcome_is_not_sent_again(
        self, receiver: Receiver, store: ArtifactStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        receiver.respond_next(400, b'{"status":"invalid event"}')
        deliver(_page(), pagerduty_conn_id="pd_test", store=store)
        overwrite(store, f"{folder()}/outcome-000001.json", b'{"retry')

        with caplog.at_level("ERROR"):
            assert deliver(_page(), pagerduty_conn_id="pd_test", store=store).duplicate is True
        assert "outcome-000001.json is not valid JSON" in caplog.text
        assert len(receiver.deliveries) == 1


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
