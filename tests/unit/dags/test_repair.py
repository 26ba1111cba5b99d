"""The repair DAG's shape and its parse cost, without a scheduler."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from airflow_selfheal.repair import RepairConfig


def config(**overrides: Any) -> RepairConfig:
    values: dict[str, Any] = {"project_dir": "/p", "snowflake_conn_id": "wh", "prod_database": "DEMO"}
    return RepairConfig(**{**values, **overrides})


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
        path = Path(__file__).resolve().parents[3] / "dags" / "selfheal_repair.py"
        completed = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, completed.stderr[-2000:]
        assert json.loads(completed.stdout.strip().splitlines()[-1]) == []
