from __future__ import annotations

import json

import pytest

from airflow_selfheal.core.pages.render import (
    PAGERDUTY_SUMMARY_LIMIT,
    SLACK_HEADER_LIMIT,
    SLACK_SECTION_LIMIT,
    Page,
    clip,
    pagerduty_event,
    slack_message,
)

WEBHOOK = "https://hooks.slack.com/services/T000/B000/abcdefghijklmnop"


def _page(**overrides: object) -> Page:
    fields: dict[str, object] = {
        "title": "dbt run failed in prod: model stg_orders (missing_column)",
        "severity": "error",
        "dedup_key": "f" * 64,
        "sections": (("Error", "000904 (42000): invalid identifier 'CUSTOMER_EMAIL'\nline 2"),),
        "details": {"pipeline": "shop_pipeline", "class": "missing_column"},
        "links": (("Approve in Airflow", "http://airflow.local/dags/x"),),
        "component": "model.selfheal_demo.stg_orders",
        "group": "shop_pipeline",
    }
    fields.update(overrides)
    return Page(**fields)  # type: ignore[arg-type]


class TestPage:
    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            pytest.param("severity", "boom", "severity must be one of", id="bad-severity"),
            pytest.param("dedup_key", "", "needs a dedup_key", id="no-dedup-key"),
        ],
    )
    def test_invalid_page_is_refused(self, field: str, value: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            _page(**{field: value})

    def test_clip_marks_the_cut(self) -> None:
        assert clip("abc", 10) == "abc"
        clipped = clip("x" * 100, 20)
        assert len(clipped) == 20
        assert clipped.endswith("[truncated]")


class TestPagerdutyEvent:
    def test_trigger_carries_dedup_key_details_and_links(self) -> None:
        event = pagerduty_event(_page())
        assert event["dedup_key"] == "f" * 64
        assert event["action"] == "trigger"
        assert event["custom_details"]["class"] == "missing_column"
        assert "CUSTOMER_EMAIL" in event["custom_details"]["Error"]
        assert event["links"] == [{"href": "http://airflow.local/dags/x", "text": "Approve in Airflow"}]

    def test_resolve_is_minimal(self) -> None:
        event = pagerduty_event(_page(), action="resolve")
        assert set(event) == {"summary", "severity", "source", "action", "dedup_key"}

    def test_summary_is_clipped(self) -> None:
        assert len(pagerduty_event(_page(title="t" * 5000))["summary"]) == PAGERDUTY_SUMMARY_LIMIT

    def test_secrets_never_leave(self) -> None:
        page = _page(
            sections=(("Log", f"posting to {WEBHOOK} with password=hunter22"),),
            details={"dsn": "snowflake://bob:pw9@acct/db"},
        )
        text = json.dumps(pagerduty_event(page)) + json.dumps(slack_message(page))
        for secret in ("abcdefghijklmnop", "hunter22", "pw9@"):
            assert secret not in text


class TestSlackMessage:
    def test_blocks_stay_within_limits(self) -> None:
        page = _page(title="T" * 400, sections=tuple((f"s{i}", "line\n" * 2000) for i in range(60)))
        message = slack_message(page)
        assert len(message["blocks"]) <= 50
        assert len(message["blocks"][0]["text"]["text"]) <= SLACK_HEADER_LIMIT
        for block in message["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= SLACK_SECTION_LIMIT

    def test_multiline_body_is_fenced_and_link_present(self) -> None:
        message = slack_message(_page())
        bodies = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
        assert any(body.startswith("*Error*\n```000904") for body in bodies)
        assert "<http://airflow.local/dags/x|Approve in Airflow>" in json.dumps(message)
