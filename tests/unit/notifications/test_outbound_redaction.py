"""Nothing secret leaves by a channel: Slack, PagerDuty, the stored incident, and the delivery records.

A secret is put in each field of a page in turn (title, section heading and body, details key and value, link
text and URL, source, component, group) and must not reach the payload the hook sends, while the rest of the
page's wording does. The deliveries go through the real Slack provider hook and our PagerDuty hook to a loopback
HTTP receiver; the failure callback runs on a hand-built cosmos context with a key-pair Snowflake connection.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

import pytest
from airflow.models import Connection

from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
from airflow_selfheal.core.pages.render import Page
from airflow_selfheal.core.redaction import REDACTED
from airflow_selfheal.notifications.delivery import deliver, pagerduty_payload, slack_payload
from airflow_selfheal.notifications.failure import SelfhealFailureNotifier
from dev.failure_contexts import (
    COSMOS_ERROR,
    REAL_RUN_RESULTS,
    CosmosDbtRunError,
    context,
    use_artifacts_root,
    write_project,
)
from dev.receivers import Receiver, http_receiver

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from airflow_selfheal.hooks.artifacts import ArtifactStore

FINGERPRINT = "3f786850e387550fdab836ed7e6dc881de23001b3f786850e387550fdab836ed"
ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
WEBHOOK_TOKEN = "q1w2e3r4t5y6u7i8o9p0abcd"
PEM_LINES = (
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7Vx3bQ9fK2mT1",
    "pR8sLw0cYh6nJd4eXa2Zu9Gq5Bv7Nk3Tm1Hs8Cy0Wf6Ej2Di4Xo9Lp5Qr7Ut3Ab1Mz",
    "Kc8Vn2Jb6Gh4Dt0Fs5Ry1Ew3Qu7Iz9Oa2Pl6Mk8Nj4Bh0Vg2Cf5Xd1Se3Ty7Ua9Wr",
)
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_LINES) + "\n-----END PRIVATE KEY-----"
PASSPHRASE = "Kp-pass-7731"

#: One secret per shape, each distinct, so that any survivor names the rule that missed it.
SECRETS = {
    "password": "hunter2-Zq8x",
    "uri_password": "p/ss#w?rd9",
    "slack_token": "xoxb-1234567890-1234567890-AbCdEfGhIjKlMnOpQrStUvWx",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldGwtc2VydmljZSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU",
    "aws_key": "AKIAIOSFODNN7EXAMPLE",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "webhook": "T0123ABCD/B0456EFGH/Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2",
    "approval_token": "appr0val-T0ken-5521",
    "dbt_secret": "dbt-git-cred-0042",
}
SECRET_TEXT = (
    f"--password {SECRETS['password']} snowflake://etl:{SECRETS['uri_password']}@acme/DB "
    f"{SECRETS['slack_token']} Bearer {SECRETS['jwt']} {SECRETS['aws_key']} {SECRETS['aws_secret']} "
    f"hooks.slack.com/services/{SECRETS['webhook']} DBT_ENV_SECRET_GIT_CRED={SECRETS['dbt_secret']}"
)


def assert_no_secret(payload: Any, secrets: Iterable[str]) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    for secret in secrets:
        assert secret not in text, secret
        assert json.dumps(secret)[1:-1] not in text, secret


def base_page(**fields: Any) -> Page:
    defaults: dict[str, Any] = {
        "title": "dbt run failed in prod: model stg_orders (missing_column)",
        "severity": "error",
        "dedup_key": FINGERPRINT,
        "sections": (("What failed", "Column CUSTOMER_EMAIL no longer exists"),),
        "details": {"pipeline": "shop_pipeline", "attempt": 2},
        "links": (("Open in Airflow", "https://airflow.example.com/dags/shop_pipeline"),),
        "component": "model.shop.stg_orders",
        "group": "shop_pipeline",
    }
    return Page(**{**defaults, **fields})


#: Each field of a page, with a secret in it; and a plain word of it that must still be sent.
FIELDS: dict[str, tuple[Callable[[str], dict[str, Any]], str]] = {
    "title": (lambda leak: {"title": f"dbt run failed in prod ({leak})"}, "dbt run failed in prod"),
    "section heading": (
        lambda leak: {"sections": ((f"Log {leak}", "see the log"),)},
        "see the log",
    ),
    "section body": (
        lambda leak: {"sections": (("What failed", f"Database Error\n  {leak}\nDone."),)},
        "Database Error",
    ),
    "details value": (lambda leak: {"details": {"error": f"connect failed: {leak}"}}, "connect failed"),
    "details key": (lambda leak: {"details": {f"note {leak}": "x"}}, "note"),
    "details nested": (lambda leak: {"details": {"log": [{"line": leak}], "n": 1}}, "What failed"),
    "secret-named details key": (
        lambda leak: {"details": {"private_key_content": PRIVATE_KEY, "credentials": {"token": leak}}},
        "private_key_content",
    ),
    "link url": (
        lambda leak: {
            "links": (
                ("Approve", f"https://airflow.example.com/approve?token={SECRETS['approval_token']}&{leak}"),
            )
        },
        "https://airflow.example.com/approve?token=",
    ),
    "link text": (
        lambda leak: {"links": ((f"Approve {leak}", "https://airflow.example.com/dags/shop_pipeline"),)},
        "https://airflow.example.com/dags/shop_pipeline",
    ),
    "source": (lambda leak: {"source": f"airflow-selfheal {leak}"}, "airflow-selfheal"),
    "component": (lambda leak: {"component": f"model.shop.stg_orders {leak}"}, "model.shop.stg_orders"),
    "group": (lambda leak: {"group": f"shop_pipeline {leak}"}, "shop_pipeline"),
}
PAYLOADS: dict[str, Callable[[Page], dict[str, Any]]] = {
    "slack": slack_payload,
    "pagerduty": pagerduty_payload,
}
#: Fields a Slack message leaves out: the PagerDuty-only ones, and details too long for a fact line.
NOT_IN_SLACK = {"source", "component", "details value"}


class TestPayloads:
    @pytest.mark.parametrize("channel", [pytest.param(name, id=name) for name in PAYLOADS])
    @pytest.mark.parametrize("field", [pytest.param(name, id=name.replace(" ", "-")) for name in FIELDS])
    def test_a_secret_in_any_field_does_not_reach_the_payload(self, channel: str, field: str) -> None:
        build, kept = FIELDS[field]
        payload = PAYLOADS[channel](base_page(**build(SECRET_TEXT)))

        assert_no_secret(payload, [*SECRETS.values(), *PEM_LINES])
        if channel == "slack" and field in NOT_IN_SLACK:
            return
        sent = json.dumps(payload)
        assert kept in sent or json.dumps(kept)[1:-1] in sent

    def test_a_page_without_secrets_is_sent_as_rendered(self) -> None:
        from airflow_selfheal.core.pages.render import pagerduty_event, slack_message

        page = base_page()
        assert slack_payload(page) == slack_message(page)
        assert pagerduty_payload(page) == pagerduty_event(page)

    def test_wording_and_links_are_kept_around_a_redacted_link(self) -> None:
        page = base_page(
            links=(
                (
                    "Approve in Airflow",
                    f"https://airflow.example.com/approve?token={SECRETS['approval_token']}",
                ),
                ("Open in Airflow", "https://airflow.example.com/dags/shop_pipeline"),
            )
        )

        slack = slack_payload(page)
        event = pagerduty_payload(page)

        links = slack["blocks"][-1]["elements"][0]["text"]
        assert links == (
            f"<https://airflow.example.com/approve?token={REDACTED}|Approve in Airflow> | "
            "<https://airflow.example.com/dags/shop_pipeline|Open in Airflow>"
        )
        assert event["links"] == [
            {"href": f"https://airflow.example.com/approve?token={REDACTED}", "text": "Approve in Airflow"},
            {"href": "https://airflow.example.com/dags/shop_pipeline", "text": "Open in Airflow"},
        ]
        assert (
            slack["blocks"][0]["text"]["text"] == "dbt run failed in prod: model stg_orders (missing_column)"
        )
        assert event["summary"] == "dbt run failed in prod: model stg_orders (missing_column)"
        assert event["dedup_key"] == FINGERPRINT


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with http_receiver() as rec:
        connections = [
            Connection(
                conn_id="slack_out",
                conn_type="slackwebhook",
                password=f"{rec.url}/services/T1/B1/{WEBHOOK_TOKEN}",
            ),
            Connection(conn_id="pd_out", conn_type="pagerduty_events", host=rec.url, password=ROUTING_KEY),
            # A key-pair Snowflake connection: no password, the key and its passphrase in the extras.
            Connection(
                conn_id="sf_keypair",
                conn_type="snowflake",
                login="etl",
                extra=json.dumps(
                    {
                        "account": "acme",
                        "private_key_content": PRIVATE_KEY,
                        "private_key_passphrase": PASSPHRASE,
                    }
                ),
            ),
        ]
        for connection in connections:
            monkeypatch.setenv(f"AIRFLOW_CONN_{connection.conn_id.upper()}", connection.as_json())
        yield rec


class TestDelivery:
    def test_every_field_redacted_on_both_channels(self, receiver: Receiver) -> None:
        page = base_page(
            title=f"dbt run failed in prod: password={SECRETS['password']}",
            sections=((f"Log {SECRETS['jwt']}", SECRET_TEXT),),
            details={"error": SECRET_TEXT, "api_key": "plain-api-key-1", "log": [SECRET_TEXT]},
            links=(
                (
                    f"Approve {SECRETS['slack_token']}",
                    f"https://x.example.com/a?token={SECRETS['approval_token']}",
                ),
            ),
            source=f"airflow-selfheal {SECRETS['aws_key']}",
            component=f"model.shop.stg_orders --password {SECRETS['password']}",
            group=f"shop_pipeline DBT_ENV_SECRET_GIT_CRED={SECRETS['dbt_secret']}",
        )

        report = deliver(page, slack_conn_id="slack_out", pagerduty_conn_id="pd_out")

        assert report.channels == {"slack": "sent", "pagerduty": "sent"}
        bodies = {delivery.path: delivery.body.decode() for delivery in receiver.deliveries}
        assert sorted(bodies) == [f"/services/T1/B1/{WEBHOOK_TOKEN}", "/v2/enqueue"]
        for body in bodies.values():
            assert_no_secret(body, [*SECRETS.values(), "plain-api-key-1"])
        event = json.loads(bodies["/v2/enqueue"])
        assert event["dedup_key"] == FINGERPRINT
        assert event["routing_key"] == ROUTING_KEY  # added by the hook, after redaction, as it must be
        assert event["payload"]["summary"] == f"dbt run failed in prod: password={REDACTED}"
        assert event["payload"]["source"] == "airflow-selfheal ***REDACTED:aws_access_key***"

    def test_a_delivery_error_quoting_the_channel_secret_is_recorded_without_it(
        self, receiver: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        store = use_artifacts_root(tmp_path, monkeypatch)
        receiver.respond_next(404, f"no_service: T1/B1/{WEBHOOK_TOKEN}".encode())
        receiver.respond_next(
            400, f'{{"status": "invalid", "message": "unknown key {ROUTING_KEY}"}}'.encode()
        )

        report = deliver(base_page(), slack_conn_id="slack_out", pagerduty_conn_id="pd_out", store=store)

        assert report.channels["slack"].startswith("failed: ")
        assert report.channels["pagerduty"].startswith("failed: DeliveryError: PagerDuty answered 400")
        records = [store.read_text(path) for path in _record_paths(store)]
        for text in [*report.channels.values(), *records]:
            assert_no_secret(text, [WEBHOOK_TOKEN, ROUTING_KEY])


def _record_paths(store: ArtifactStore) -> list[str]:
    folder = f"notifications/pages/{FINGERPRINT}"
    return [f"{folder}/{name}" for name in store.list(folder)]


class TestFailureCallback:
    def test_incident_and_pages_keep_a_key_pair_connection_and_every_shape_out(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
    ) -> None:
        artifacts = use_artifacts_root(tmp_path, monkeypatch)
        run_results = copy.deepcopy(REAL_RUN_RESULTS)
        run_results["results"][0]["message"] += f"\n  {SECRET_TEXT}"
        project = write_project(tmp_path / "project", run_results)
        compiled = next((project / "target" / "compiled").rglob("stg_orders.sql"))
        compiled.write_text(f"-- DBT_ENV_SECRET_GIT_CRED={SECRETS['dbt_secret']}\n{compiled.read_text()}")
        # The key as the connector quotes it: one line of it, and the passphrase upper-cased.
        leaky = (
            f"{COSMOS_ERROR}\nCould not deserialize key line {PEM_LINES[1]} with {PASSPHRASE.upper()}\n"
            f"{SECRET_TEXT}"
        )
        ctx = context(project, conn_id="sf_keypair", exception=CosmosDbtRunError(leaky))
        capture_dbt_artifacts(project, context=ctx)
        notifier = SelfhealFailureNotifier(
            manifest_path=project / "target" / "manifest.json",
            slack_conn_id="slack_out",
            pagerduty_conn_id="pd_out",
            environment="prod",
            dispatch=False,
        )

        outcome = notifier.handle(ctx)

        stored = artifacts.read_text(f"incidents/{outcome.incident.incident_id}/incident.json")
        bodies = [delivery.body.decode() for delivery in receiver.deliveries]
        assert len(bodies) == 2
        for text in [stored, *bodies]:
            assert_no_secret(text, [*SECRETS.values(), *PEM_LINES, PASSPHRASE, PASSPHRASE.upper()])
        incident = json.loads(stored)
        assert "Could not deserialize key line" in incident["error"]
        assert incident["nodes"][0]["unique_id"] == "model.selfheal_demo.stg_orders"
        assert (outcome.incident.triage or {})["failure_class"] == "missing_column"
        slack = json.loads(next(body for body in bodies if '"blocks"' in body))
        assert (
            slack["blocks"][0]["text"]["text"] == "dbt run failed in prod: model stg_orders (missing_column)"
        )
