"""The failed-run page, from incidents built by hand: title, summary lines, details and deduplication."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from airflow_selfheal.core.incident import DbtNodeRef, Incident, build_incident
from airflow_selfheal.core.pages.failure import failure_page
from airflow_selfheal.core.pages.render import pagerduty_event, slack_message

STG_ORDERS = DbtNodeRef("model.shop.stg_orders", "model", "stg_orders", "models/staging/stg_orders.sql")
FCT_ORDERS = DbtNodeRef("model.shop.fct_orders", "model", "fct_orders", "models/marts/fct_orders.sql")
FAILED_AT = datetime(2026, 3, 1, 6, 1, 2, tzinfo=timezone.utc)
TRIAGE: dict[str, Any] = {
    "failure_class": "missing_column",
    "action": "repair",
    "description": "Rewrite the reference to the renamed column.",
    "summary": "Column CUSTOMER_EMAIL referenced by stg_orders no longer exists",
    "root_cause": {"kind": "upstream_rename", "message": "Upstream rename: CUSTOMER_EMAIL -> EMAIL_ADDRESS"},
    "error_code": "002043",
}


def incident(
    *, nodes: tuple[DbtNodeRef, ...] = (STG_ORDERS,), triage: dict[str, Any] | None = TRIAGE, **overrides: Any
) -> Incident:
    values: dict[str, Any] = {
        "pipeline": "shop_pipeline",
        "run_id": "manual__1",
        "task_id": "shop.stg_orders.run",
        "try_number": 2,
        "nodes": nodes,
        "error": "002043 (02000): Binder Error: Referenced column CUSTOMER_EMAIL not found",
        "failed_at": FAILED_AT,
        "environment": "prod",
        "git_sha": "abc123",
        **overrides,
    }
    built = build_incident(**values)
    return built.with_triage(triage) if triage is not None else built


def summary(page: Any) -> list[str]:
    ((heading, body),) = page.sections
    assert heading == "Summary"
    return [line.removeprefix("• ") for line in body.splitlines()]


class TestFailurePage:
    def test_a_dbt_failure_names_the_node_and_the_class(self) -> None:
        failed = incident()
        page = failure_page(failed)
        assert page.title == "dbt run failed in prod: model stg_orders (missing_column)"
        assert (page.severity, page.dedup_key) == ("error", failed.fingerprint)
        assert (page.source, page.component, page.group) == (
            "airflow-selfheal (prod)",
            "model.shop.stg_orders",
            "shop_pipeline",
        )
        assert summary(page) == [
            "Column CUSTOMER_EMAIL referenced by stg_orders no longer exists",
            "Root cause: Upstream rename: CUSTOMER_EMAIL -> EMAIL_ADDRESS",
            "Recommended action: repair. Rewrite the reference to the renamed column.",
            "Pipeline shop_pipeline, run manual__1, task shop.stg_orders.run, try 2",
            f"Incident {failed.incident_id}, failed at {failed.failed_at}",
        ]
        assert dict(page.details) == {
            "incident_id": failed.incident_id,
            "pipeline": "shop_pipeline",
            "run_id": "manual__1",
            "task_id": "shop.stg_orders.run",
            "try_number": 2,
            "node": "model.shop.stg_orders",
            "failure_class": "missing_column",
            "action": "repair",
            "error_code": "002043",
            "triage_signal": None,
            "environment": "prod",
            "git_sha": "abc123",
        }

    def test_the_signal_that_classified_it_is_on_the_page(self) -> None:
        from airflow_selfheal.core.triage import classify

        triage = classify("000904 (42000): SQL compilation error:\ninvalid identifier 'X'").to_dict()
        page = failure_page(incident().with_triage(triage))
        assert "Classified by code 000904 (confidence 0.95)" in summary(page)
        assert page.details["triage_signal"] == "code 000904"

    def test_more_failed_nodes_are_counted_in_the_title(self) -> None:
        page = failure_page(incident(nodes=(STG_ORDERS, FCT_ORDERS)))
        assert page.title == "dbt run failed in prod: model stg_orders and 1 more (missing_column)"

    def test_a_failure_outside_dbt_names_the_task_and_what_it_blocked(self) -> None:
        blocked = tuple(
            DbtNodeRef(f"model.shop.m{n:02d}", "model", f"m{n:02d}", f"models/m{n:02d}.sql")
            for n in range(12)
        )
        page = failure_page(
            incident(
                nodes=(),
                task_id="check_source_drift",
                blocked_nodes=blocked,
                triage={"failure_class": "transient"},
            )
        )
        assert page.title == "dbt run failed in prod: task check_source_drift (transient)"
        assert page.component == "check_source_drift"
        assert page.details["node"] is None
        names = ", ".join(f"m{n:02d}" for n in range(10))
        assert f"Blocked dbt nodes: {names} and 2 more" in summary(page)

    def test_an_unclassified_incident_says_what_is_missing(self) -> None:
        page = failure_page(
            incident(nodes=(), task_id=None, triage=None, missing=["exception missing from the context"])
        )
        assert page.title == "dbt run failed in prod: task unknown (unclassified)"
        lines = summary(page)
        assert lines[0] == "No error text was captured."
        assert not any(line.startswith(("Root cause:", "Recommended action:")) for line in lines)
        assert lines[-1] == "Missing: exception missing from the context"

    def test_it_renders_for_both_channels(self) -> None:
        page = failure_page(incident())
        event = pagerduty_event(page)
        assert event["dedup_key"] == page.dedup_key
        assert event["summary"] == page.title
        assert slack_message(page)["blocks"][0]["text"]["text"] == page.title
