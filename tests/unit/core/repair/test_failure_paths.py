"""Failure paths that must reach on-call: crashed repair steps, source freshness facts, old incident records."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.incidents import make_incident

SOURCES_JSON = {
    "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/sources/v3.json"},
    "results": [
        {
            "unique_id": "source.selfheal_demo.raw.customers",
            "status": "pass",
            "max_loaded_at": "2026-11-23T08:00:00+00:00",
            "snapshotted_at": "2026-11-23T09:00:00+00:00",
            "max_loaded_at_time_ago_in_s": 3600.0,
            "criteria": {"warn_after": {"count": 12, "period": "hour"}, "error_after": {}},
        },
        {
            "unique_id": "source.selfheal_demo.raw.orders",
            "status": "error",
            "max_loaded_at": "2026-11-20T09:00:00+00:00",
            "snapshotted_at": "2026-11-23T09:00:00+00:00",
            "max_loaded_at_time_ago_in_s": 259200.0,
            "criteria": {
                "warn_after": {"count": 12, "period": "hour"},
                "error_after": {"count": 24, "period": "hour"},
                "loaded_at_field": "_LOADED_AT",
            },
        },
    ],
}


class TestFreshnessFacts:
    def test_the_stale_source_is_reported_with_age_and_threshold(self) -> None:
        from airflow_selfheal.core.incident import freshness_facts

        facts = freshness_facts(SOURCES_JSON)
        assert facts == {
            "unique_id": "source.selfheal_demo.raw.orders",
            "status": "error",
            "loaded_at_field": "_LOADED_AT",
            "max_loaded_at": "2026-11-20T09:00:00+00:00",
            "snapshotted_at": "2026-11-23T09:00:00+00:00",
            "age": "3 days, 0:00:00 (259200 s)",
            "threshold": "error after 24 hour; warn after 12 hour",
        }

    def test_a_named_source_is_chosen_and_nothing_matches_gives_none(self) -> None:
        from airflow_selfheal.core.incident import freshness_facts

        chosen = freshness_facts(SOURCES_JSON, "source.selfheal_demo.raw.customers")
        assert chosen is not None
        assert chosen["status"] == "pass"
        assert freshness_facts({"results": [SOURCES_JSON["results"][0]]}) is None

    def test_incident_keeps_freshness_and_reads_records_without_it(self) -> None:
        from airflow_selfheal.core.incident import Incident, freshness_facts

        record = make_incident()
        old = {key: value for key, value in record.items() if key not in ("freshness", "triage", "missing")}
        assert Incident.from_dict(old).freshness is None  # a 0.1.0 record
        facts = freshness_facts(SOURCES_JSON)
        incident = Incident.from_dict({**record, "freshness": facts})
        assert Incident.from_dict(incident.to_dict()).freshness == facts
        with pytest.raises(ValueError, match="freshness"):
            Incident.from_dict({**record, "freshness": "stale"})


class TestEscalationPage:
    def test_a_crashed_step_is_named_and_its_error_redacted(self) -> None:
        from airflow_selfheal.core.pages.render import pagerduty_event, slack_message
        from airflow_selfheal.core.pages.repair import escalation_page
        from airflow_selfheal.core.repair.decisions import failure_reason

        reason = failure_reason("clone", "OperationalError: login failed for password=hunter2secret")
        assert reason.startswith("the repair run failed at clone (cloning prod): OperationalError")
        assert "hunter2secret" not in reason
        page = escalation_page(make_incident(), reason, failed_step="clone")
        assert page.title.endswith("(repair step clone failed)")
        assert page.details["failed_step"] == "clone"
        assert "hunter2secret" not in repr(pagerduty_event(page)) + repr(slack_message(page))

    def test_a_task_killed_without_an_error_still_says_where(self) -> None:
        from airflow_selfheal.core.repair.decisions import failure_reason

        assert "killed?" in failure_reason("validate", None)

    def test_freshness_facts_are_a_section_of_the_page(self) -> None:
        from airflow_selfheal.core.incident import freshness_facts
        from airflow_selfheal.core.pages.repair import escalation_page

        incident = {**make_incident(), "freshness": freshness_facts(SOURCES_JSON)}
        sections = dict(escalation_page(incident, "stale").sections)
        text = sections["Source freshness"]
        for fact in (
            "source.selfheal_demo.raw.orders",
            "_LOADED_AT",
            "2026-11-20T09:00:00",
            "259200 s",
            "24 hour",
        ):
            assert fact in text


@pytest.mark.parametrize(
    ("step", "outcome"),
    [
        pytest.param("clone", "step_failed", id="clone"),
        pytest.param("retry", "retry_failed", id="retry"),
        pytest.param("rerun", "promoted_rerun_failed", id="rerun"),
    ],
)
def test_outcome_of_a_crashed_step(step: str, outcome: str) -> None:
    from airflow_selfheal.core.repair.decisions import decide_outcome

    results: dict[str, Any] = {"failure": {"failed_step": step}, "approve": {"chosen_options": ["Approve"]}}
    assert decide_outcome(results) == outcome


def test_dbt_view_models_names_only_views_the_clone_lacks() -> None:
    from airflow_selfheal.core.repair.relations import dbt_view_models

    manifest = {
        "nodes": {
            "model.p.stg": {
                "resource_type": "model", "name": "stg", "schema": "analytics", "config": {"materialized": "view"}
            },
            "model.p.fct": {
                "resource_type": "model", "name": "fct", "schema": "analytics", "config": {"materialized": "table"}
            },
            "model.p.aliased": {
                "resource_type": "model", "name": "int_x", "alias": "x", "schema": "analytics",
                "config": {"materialized": "view"},
            },
        }
    }  # fmt: skip
    found = dbt_view_models(manifest, ["ANALYTICS.STG", "analytics.fct", "ANALYTICS.X", "RAW.ORDERS"])
    assert found == {"ANALYTICS.STG": "stg", "ANALYTICS.X": "int_x"}
