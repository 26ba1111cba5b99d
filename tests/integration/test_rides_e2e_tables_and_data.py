"""The second project's other scenarios through the real pipeline and repair, and a warehouse outage.

A renamed table, duplicate and NULL keys that fail data tests, a stale source (and, with
``SELFHEAL_E2E_SCENARIOS=all``, a dropped table and a new enum value), then the warehouse down before dbt runs.
The column changes run in ``test_rides_e2e_columns.py``, so ``make test`` runs both halves on its two workers.
What a scenario checks, and the ``SELFHEAL_E2E_PROJECT``, ``SELFHEAL_E2E_SCENARIOS`` and ``SELFHEAL_E2E_REPORT``
switches, are described in :mod:`tests.support.rides_e2e`; the stack is the ``e2e_stack`` fixture of the conftest.
"""

from __future__ import annotations

from typing import Any

import pytest

from dev.warehouse import free_port
from tests.support.rides_e2e import (
    CONN_ID,
    PIPELINE,
    PROJECT,
    TABLES_AND_DATA,
    check_scenario,
    clean_state,
    conn_json,
    repair,
    repair_run_ids,
    requested_repairs,
    scenario_names,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("name", scenario_names(TABLES_AND_DATA))
def test_scenario_ends_as_expected(e2e_stack: dict[str, Any], name: str) -> None:
    check_scenario(e2e_stack, name)


def test_warehouse_outage_before_dbt_is_retried(
    e2e_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drift check cannot reach the warehouse, so no dbt task runs; the retry rebuilds prod once it answers.

    Both finance marts are dropped first, as if the run that builds them never happened, so only a retry that
    really ran dbt in prod can bring them back.
    """
    from airflow_selfheal.records.audit import AuditLog

    stack = e2e_stack
    clean_state(stack)
    # The run that should have built the finance marts never happened: they are missing until a build runs.
    finance = [f"{PROJECT.marts}.FCT_DAILY_REVENUE", f"{PROJECT.marts}.FCT_REVENUE_BY_PLAN"]
    with PROJECT.connect(stack["warehouse"]) as conn:
        for table in finance:
            conn.cursor().execute(f"drop table {table}")
    known = repair_run_ids()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(stack["warehouse"], port=free_port()))
    pipeline = stack["bag"].dags[PIPELINE].test()
    states = {ti.task_id: str(ti.state) for ti in pipeline.get_task_instances()}
    assert states["check_source_drift"] == "failed", states
    confs = requested_repairs(known)
    assert len(confs) == 1, confs
    triage = confs[0]["incident"].get("triage") or {}
    assert triage.get("failure_class") == "transient", triage
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn_json(stack["warehouse"]))
    result = repair(stack, confs[0])
    assert result["states"]["retry"] == "success", result["states"]
    assert result["states"]["clone"] == "skipped", result["states"]
    assert AuditLog(confs[0]["incident"]["incident_id"]).summary()["outcome"] == "retried"
    with PROJECT.connect(stack["warehouse"]) as conn:
        for table in finance:
            assert conn.cursor().execute(f"select count(*) from {table}").fetchone()[0] > 0, table
        assert PROJECT.check_oracles(conn) == []  # the re-run rebuilt the marts from the same raw data
    stack["report"].append(
        {
            "project": PROJECT.key,
            "scenario": "warehouse_outage",
            "class": "transient",
            "expected_outcome": "retried",
            "outcome": "retried",
            "repair_seconds": round(result["seconds"], 1),
        }
    )
