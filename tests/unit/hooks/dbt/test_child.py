"""The dbt child process: it starts without Airflow, and drops the dbt flags the worker's environment sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks import dbt as dbt_module
from airflow_selfheal.hooks.dbt import PROD_PROFILE_NAME, PROD_TARGET_NAME, PROFILE_NAME, TARGET_NAME
from airflow_selfheal.hooks.dbt import child as child_module

if TYPE_CHECKING:
    from pathlib import Path


def _child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "airflow_selfheal.hooks.dbt", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_child_starts_without_airflow_or_dbt() -> None:
    completed = _child("--help")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: python -m airflow_selfheal.hooks.dbt REQUEST.json")
    imported = [line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines() if "|" in line]
    assert "airflow_selfheal.hooks.dbt.child" in imported
    assert not [name for name in imported if name == "airflow" or name.startswith("airflow.")]
    assert not [name for name in imported if name == "dbt" or name.startswith("dbt.")]
    assert "airflow_selfheal.hooks.sandbox" not in imported


def test_child_without_a_request_says_how_to_call_it() -> None:
    completed = _child()
    assert completed.returncode == 2
    assert "usage:" in completed.stderr


def test_unknown_request_kind_is_refused(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"kind": "deploy", "report_path": str(tmp_path / "report.json")}))

    assert child_module.main([str(request)]) == 2
    assert json.loads((tmp_path / "report.json").read_text()) == {
        "phase": "refused",
        "reason": "unknown request kind 'deploy'",
    }


def test_unknown_production_command_is_refused_before_dbt(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    report = tmp_path / "report.json"
    request.write_text(json.dumps({"kind": "production", "command": "run", "report_path": str(report)}))

    assert child_module.main([str(request)]) == 2
    assert json.loads(report.read_text())["reason"] == "unknown production dbt command 'run'"


@pytest.mark.slow
def test_child_drops_dbt_flags_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.cli.main import cli

    environ = {
        **os.environ,
        "DBT_PROFILES_DIR": "/srv/prod-profiles",
        "DBT_TARGET": "prod",
        "DBT_DEFER": "1",
        "DBT_STATE": "/srv/prod-state",
        "DBT_ENV_SECRET_API": "kept",
        "MY_SETTING": "kept",
    }
    monkeypatch.setattr(os, "environ", environ)
    dbt_module._scrub_dbt_flag_environment(cli)
    assert sorted(name for name in environ if name.startswith("DBT_")) == [
        "DBT_ENV_SECRET_API",
        "DBT_SEND_ANONYMOUS_USAGE_STATS",
    ]
    assert (environ["DBT_SEND_ANONYMOUS_USAGE_STATS"], environ["MY_SETTING"]) == ("False", "kept")


class _Result:
    def __init__(self, *, success: bool, exception: BaseException | None = None) -> None:
        self.success, self.exception, self.result = success, exception, None


@pytest.mark.slow
@pytest.mark.parametrize(
    ("result", "exit_code"),
    [
        pytest.param(_Result(success=True), 0, id="success"),
        pytest.param(_Result(success=False), 1, id="nodes-failed"),
        pytest.param(_Result(success=False, exception=RuntimeError("boom")), 2, id="raised"),
    ],
)
def test_production_child_runs_dbt_with_the_production_profile_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    result: _Result,
    exit_code: int,
) -> None:
    import dbt.cli.main

    calls: list[list[str]] = []

    class Runner:
        def __init__(self, manifest: Any = None) -> None:
            pass

        def invoke(self, args: list[str]) -> _Result:
            calls.append(list(args))
            return result

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", Runner)
    monkeypatch.setenv("DBT_TARGET", "prod")
    report = tmp_path / "report.json"
    request = {
        "kind": "production",
        "command": "build",
        "select": "stg_orders+  fct_orders+",
        "threads": 2,
        "project_dir": "/p",
        "profiles_dir": "/profiles",
        "target_path": "/t",
        "log_path": "/l",
        # A production request cannot choose its profile: these are ignored.
        "profile": PROFILE_NAME,
        "target": TARGET_NAME,
        "report_path": str(report),
    }
    (tmp_path / "request.json").write_text(json.dumps(request))

    assert child_module.main([str(tmp_path / "request.json")]) == exit_code

    (args,) = calls
    assert args[:6] == ["build", "--select", "stg_orders+", "fct_orders+", "--threads", "2"]
    assert args[args.index("--profile") + 1] == PROD_PROFILE_NAME
    assert args[args.index("--target") + 1] == PROD_TARGET_NAME
    assert PROFILE_NAME not in args
    assert TARGET_NAME not in args
    assert "DBT_TARGET" not in os.environ
    written = json.loads(report.read_text())
    assert (written["phase"], written["success"]) == ("built", result.success)
    assert ("reason" in written) is (result.exception is not None)
