"""The repair loop's step functions and the DAG's shape, without a scheduler or a warehouse."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.repair import (
    RepairConfig,
    approval_body,
    approver,
    attempt_decision,
    decide_outcome,
    failed_selector,
    load_incident,
    model_relations,
    triage_step,
)
from tests.support.incidents import RENAME_ERROR, make_incident


def config(**overrides: Any) -> RepairConfig:
    values: dict[str, Any] = {"project_dir": "/p", "snowflake_conn_id": "wh", "prod_database": "DEMO"}
    return RepairConfig(**{**values, **overrides})


class TestRepairConfig:
    def test_defaults(self) -> None:
        cfg = config()
        assert (cfg.deploy_branch, cfg.promote_mode, cfg.max_attempts) == ("main", "merge", 2)
        assert cfg.approval_timeout == timedelta(hours=4)
        assert str(cfg.manifest) == "/p/target/manifest.json"

    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"max_attempts": 0}, id="attempts"),
            pytest.param({"promote_mode": "force"}, id="mode"),
            pytest.param({"prod_database": ""}, id="prod"),
            pytest.param({"approval_timeout": timedelta(0)}, id="timeout"),
        ],
    )
    def test_bad_values_fail_at_parse_time(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=next(iter(overrides)).split("_")[0]):
            config(**overrides)


class TestLoadIncident:
    def test_from_conf(self) -> None:
        incident = make_incident()
        conf = {
            "incident_id": incident["incident_id"],
            "fingerprint": incident["fingerprint"],
            "incident": incident,
        }
        assert load_incident(conf) == incident

    def test_from_incident_path_when_truncated(self, tmp_path: Any) -> None:
        incident = make_incident()
        store = ArtifactStore(root=f"file://{tmp_path}", conn_id="")
        relative = f"incidents/{incident['incident_id']}/incident.json"
        store.create_json(relative, incident)
        conf = {"incident_id": incident["incident_id"], "incident": None, "incident_path": relative}
        assert load_incident(conf, store) == incident
        assert load_incident({**conf, "incident_path": str(tmp_path / relative)}) == incident

    def test_mismatched_conf_is_refused(self) -> None:
        incident = make_incident()
        with pytest.raises(ValueError, match="incident_id"):
            load_incident({"incident_id": "inc-other", "incident": incident})
        with pytest.raises(ValueError, match="neither"):
            load_incident({})


class TestTriageStep:
    def test_recorded_rename_is_repaired(self) -> None:
        from airflow_selfheal.core.triage import classify

        triage = classify(RENAME_ERROR, resource_type="model").to_dict()
        decided = triage_step(make_incident(triage=triage))
        assert (decided["action"], decided["branch"], decided["select"]) == ("repair", "clone", "stg_orders+")

    @pytest.mark.parametrize(
        ("error", "branch"),
        [
            pytest.param(RENAME_ERROR, "clone", id="missing-column"),
            pytest.param(
                "250001: Could not connect to Snowflake backend after 2 attempt(s)", "retry", id="transient"
            ),
            pytest.param("something nobody has seen before", "escalate", id="unknown"),
        ],
    )
    def test_classified_when_not_recorded(self, error: str, branch: str) -> None:
        assert triage_step(make_incident(error=error, triage=None))["branch"] == branch

    def test_no_node_escalates(self) -> None:
        decided = triage_step(make_incident(nodes=[]))
        assert (decided["branch"], decided["select"]) == ("escalate", "")

    def test_selector_names_every_node_once(self) -> None:
        nodes = [{"name": "a"}, {"name": "b"}, {"name": "a"}]
        assert failed_selector({"nodes": nodes}) == "a+ b+"


class TestAttemptDecision:
    @pytest.mark.parametrize(
        ("signatures", "success", "expected"),
        [
            pytest.param([], True, "proposal", id="first-pass"),
            pytest.param(["x"], True, "proposal", id="second-pass"),
            pytest.param(["x"], False, "retry", id="one-failure"),
            pytest.param(["x", "x"], False, "escalate_same_error", id="same-twice"),
            pytest.param(["x", "y"], False, "escalate_attempts", id="limit"),
        ],
    )
    def test_decision(self, signatures: list[str], success: bool, expected: str) -> None:
        assert attempt_decision(signatures, success, 2) == expected

    def test_same_error_twice_wins_over_a_higher_limit(self) -> None:
        assert attempt_decision(["x", "x"], False, 5) == "escalate_same_error"
        assert attempt_decision(["x", "y"], False, 5) == "retry"


class TestApproval:
    PROPOSAL: dict[str, Any] = {
        "fix_type": "column_rename",
        "tier": "auto",
        "rationale": "raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS",
        "diff": "-    customer_email,\n+    email_address as customer_email,\n",
        "validation": {
            "select": "stg_orders+",
            "attempt": "attempt-1",
            "elapsed_seconds": 3.2,
            "nodes": [{"unique_id": "model.selfheal_demo.stg_orders", "status": "success"}],
        },
        "data_diff": {
            "relations": {
                "ANALYTICS.FCT_ORDERS": {
                    "status": "same",
                    "clone": {"row_count": 200},
                    "prod": {"row_count": 200},
                }
            }
        },
    }

    def test_body_has_diagnosis_diff_validation_and_data_diff(self) -> None:
        triage = {
            "failure_class": "missing_column",
            "summary": "column gone",
            "root_cause": {"message": "rename"},
        }
        body = approval_body(make_incident(), triage, self.PROPOSAL)
        for expected in (
            "### Diagnosis",
            "Root cause: rename",
            "+    email_address as customer_email,",
            "`model.selfheal_demo.stg_orders`: success",
            "| ANALYTICS.FCT_ORDERS | same | 200 | 200 |",
        ):
            assert expected in body

    @pytest.mark.parametrize(
        ("response", "expected"),
        [
            pytest.param(
                {"chosen_options": ["Approve"], "responded_by_user": {"id": "jane", "name": "Jane Doe"}},
                (True, "Jane Doe <jane@selfheal>"),
                id="approve",
            ),
            pytest.param(
                {"chosen_options": ["Reject"], "responded_by_user": {"id": "j", "name": "J"}},
                (False, "J <j@selfheal>"),
                id="reject",
            ),
            pytest.param(None, (False, "unknown <selfheal@localhost>"), id="none"),
        ],
    )
    def test_approver(self, response: dict[str, Any] | None, expected: tuple[bool, str]) -> None:
        from airflow_selfheal.hooks.git import parse_author

        assert approver(response) == expected
        parse_author(expected[1])  # a valid commit author


class TestDecideOutcome:
    @pytest.mark.parametrize(
        ("results", "outcome"),
        [
            pytest.param({"rerun": {"success": True}}, "resolved", id="resolved"),
            pytest.param({"rerun": {"success": False}}, "promoted_rerun_failed", id="rerun-failed"),
            pytest.param({"retry": {"success": True}}, "retried", id="retried"),
            pytest.param({"approve": {"chosen_options": ["Reject"]}}, "rejected", id="rejected"),
            pytest.param({"escalate": {"reason": "x"}}, "escalated", id="escalated"),
            pytest.param({"validate": {"status": "escalate"}}, "escalated", id="invalid"),
            pytest.param({"validate": {"status": "proposal"}}, "timed_out_or_failed", id="timeout"),
            pytest.param({"states": {"approve": "failed"}}, "timed_out", id="timed-out"),
            pytest.param(
                {"states": {"approve": "success", "promote": "skipped"}}, "rejected", id="rejected-no-xcom"
            ),
            pytest.param({}, "failed", id="nothing"),
        ],
    )
    def test_outcome(self, results: dict[str, Any], outcome: str) -> None:
        assert decide_outcome(results) == outcome


def test_model_relations() -> None:
    manifest = {
        "nodes": {
            "model.p.stg_orders": {"resource_type": "model", "schema": "analytics", "name": "stg_orders"},
            "model.p.fct": {
                "resource_type": "model",
                "schema": "analytics",
                "name": "fct",
                "alias": "fct_orders",
            },
            "test.p.t": {"resource_type": "test", "schema": "analytics", "name": "t"},
        }
    }
    ids = ["test.p.t", "model.p.fct", "model.p.stg_orders", "model.p.gone"]
    assert model_relations(manifest, ids) == ["ANALYTICS.FCT_ORDERS", "ANALYTICS.STG_ORDERS"]


def test_prod_build_command_uses_its_own_profile(tmp_path: Any) -> None:
    from pathlib import Path

    from airflow_selfheal.repair import prod_build_command

    command = prod_build_command(Path("/p"), "a+ b+", tmp_path)
    assert command[1:5] == ["build", "--select", "a+", "b+"]
    assert command[command.index("--profiles-dir") + 1] == str(tmp_path)
    assert command[command.index("--profile") + 1] == "selfheal_validation"


class TestDag:
    def test_shape(self) -> None:
        from airflow_selfheal.dags.repair import build_repair_dag

        dag = build_repair_dag(config=config(assigned_users=[{"id": "jane", "name": "Jane"}]))
        assert dag.dag_id == "selfheal_repair"
        assert (dag.schedule, dag.max_active_runs) == (None, 1)
        downstream = {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks}
        assert downstream["route"] == ["clone", "escalate", "retry"]
        assert downstream["approve"] == ["promote", "unanswered"]
        assert downstream["promote"] == ["escalate_failure", "rerun"]
        assert downstream["rerun"] == ["accept_baseline", "escalate_failure"]
        crashed = dag.get_task("escalate_failure")
        assert crashed.trigger_rule == "one_failed"
        assert crashed.upstream_task_ids == {
            "retry",
            "clone",
            "propose",
            "validate",
            "page",
            "promote",
            "rerun",
        }
        assert downstream["accept_baseline"] == ["resolve"]
        cleanup = dag.get_task("cleanup")
        assert cleanup.is_teardown
        assert {
            "resolve", "unanswered", "retry", "escalate", "escalate_invalid", "escalate_failure"
        } <= cleanup.upstream_task_ids  # fmt: skip
        approve = dag.get_task("approve")
        assert approve.response_timeout == timedelta(hours=4)
        assert approve.assigned_users == [{"id": "jane", "name": "Jane"}]
        assert set(dag.get_task("unanswered").upstream_task_ids) == {"approve"}

    def test_shipped_dag_parses_without_heavy_imports(self) -> None:
        import subprocess
        import sys
        from pathlib import Path

        script = (
            "import sys, runpy; runpy.run_path(sys.argv[1]);"
            "import json; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dbt', 'sqlglot', 'pandas', 'langchain') or m.startswith('snowflake.connector'))))"
        )
        path = Path(__file__).resolve().parents[2] / "dags" / "selfheal_repair.py"
        completed = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert json.loads(completed.stdout.strip().splitlines()[-1]) == []


class TestApprovalLink:
    def approve_task(self) -> Any:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        return ApprovalOperator(task_id="approve", subject="s")

    def test_points_at_the_approval_tasks_required_actions_page(self) -> None:
        from airflow_selfheal.repair import approval_link

        link = approval_link(self.approve_task(), "selfheal_repair", "manual__1", "https://airflow.example/")
        assert link == (
            "https://airflow.example/dags/selfheal_repair/runs/manual__1/tasks/approve/required_actions"
            "?map_index=-1"
        )

    def test_no_base_url_means_no_link_not_a_failed_page(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from airflow_selfheal.repair import approval_link

        monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
        assert approval_link(self.approve_task(), "d", "r", None) is None


class TestAcceptBaselineStep:
    """The skip decisions; accepting a real snapshot is covered by the end-to-end test on the warehouse."""

    def test_needs_a_baseline_name(self) -> None:
        from airflow_selfheal.repair import accept_baseline_step

        result = accept_baseline_step(config(), {"root_cause": {"message": "x"}}, "a <a@b>", "inc-1")
        assert result == {"accepted": False, "reason": "no baseline_name configured"}

    def test_only_after_drift(self) -> None:
        from airflow_selfheal.repair import accept_baseline_step

        result = accept_baseline_step(
            config(baseline_name="shop_raw"), {"root_cause": None}, "a <a@b>", "inc-1"
        )
        assert result == {"accepted": False, "reason": "the failure was not caused by source drift"}


def test_page_scope_is_per_run_and_path_safe() -> None:
    from airflow_selfheal.dags.repair import _scope

    assert _scope("proposals", {"run_id": "manual__2026-11-23T10:00:00+00:00"}) == (
        "proposals/manual__2026-11-23T10_00_00_00_00"
    )


def test_probe_targets_inputs_outputs_and_one_level_downstream() -> None:
    from airflow_selfheal.repair import probe_targets

    manifest = {
        "sources": {
            "source.p.raw.orders": {
                "resource_type": "source",
                "schema": "raw",
                "name": "orders",
                "identifier": "ORDERS",
            }
        },
        "nodes": {
            "model.p.stg_orders": {"resource_type": "model", "schema": "analytics", "name": "stg_orders"},
            "model.p.fct": {
                "resource_type": "model",
                "schema": "analytics",
                "name": "fct",
                "alias": "fct_orders",
            },
            "model.p.rpt": {"resource_type": "model", "schema": "reports", "name": "rpt"},
            "test.p.not_null": {"resource_type": "test", "schema": "analytics", "name": "not_null"},
        },
        "parent_map": {
            "model.p.stg_orders": ["source.p.raw.orders"],
            "model.p.fct": ["model.p.stg_orders"],
            "model.p.rpt": ["model.p.fct"],
            "test.p.not_null": ["model.p.stg_orders"],
        },
        "child_map": {
            "source.p.raw.orders": ["model.p.stg_orders"],
            "model.p.stg_orders": ["model.p.fct", "test.p.not_null"],
            "model.p.fct": ["model.p.rpt"],
        },
    }
    expected = {
        "inputs": ["RAW.ORDERS"],
        "outputs": ["ANALYTICS.STG_ORDERS"],
        "downstream": ["ANALYTICS.FCT_ORDERS"],
    }
    assert probe_targets(manifest, ["model.p.stg_orders"]) == expected
    # A failed test is probed through the model it tests; the test itself is not a relation.
    assert probe_targets(manifest, ["test.p.not_null"]) == expected


def test_dbt_log_excerpt_starts_at_the_error_summary() -> None:
    from airflow_selfheal.repair import dbt_log_excerpt

    output = (
        "PASS x\n" * 1000 + "Completed with 1 error:\n  Database Error in model a\nDone. PASS=1 ERROR=1\n"
    )
    assert dbt_log_excerpt(output).startswith("Completed with 1 error:")
    assert dbt_log_excerpt("a" * 10 + "tail", limit=4) == "tail"


def test_failed_relations_start_from_what_a_failed_test_tests() -> None:
    """A renamed source fails its source test first: the models reading that source are broken in prod too."""
    from airflow_selfheal.repair import failed_relations

    def model(name: str) -> dict[str, Any]:
        return {"resource_type": "model", "schema": "analytics", "name": name}

    manifest = {
        "nodes": {
            "model.p.stg_products": model("stg_products"),
            "model.p.int_items": model("int_items"),
            "model.p.stg_orders": model("stg_orders"),
            "test.p.source_unique_raw_products_id": {
                "resource_type": "test",
                "schema": "analytics",
                "name": "t",
            },
        },
        "parent_map": {"test.p.source_unique_raw_products_id": ["source.p.raw.products"]},
        "child_map": {
            "source.p.raw.products": ["model.p.stg_products", "test.p.source_unique_raw_products_id"],
            "model.p.stg_products": ["model.p.int_items"],
            "source.p.raw.orders": ["model.p.stg_orders"],
        },
    }
    incident = {"nodes": [{"unique_id": "test.p.source_unique_raw_products_id"}]}
    assert failed_relations(None, incident, manifest) == ["ANALYTICS.INT_ITEMS", "ANALYTICS.STG_PRODUCTS"]  # type: ignore[arg-type]
    model_failed = {"nodes": [{"unique_id": "model.p.stg_products"}]}
    assert failed_relations(None, model_failed, manifest) == ["ANALYTICS.INT_ITEMS", "ANALYTICS.STG_PRODUCTS"]  # type: ignore[arg-type]
