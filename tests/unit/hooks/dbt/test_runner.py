"""The one dbt runner: a process group killed whole on timeout, output redacted, the excerpt a person reads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from airflow_selfheal.hooks.dbt import PASSWORD_ENV, dbt_environment, dbt_log_excerpt, run_in_process_group
from airflow_selfheal.hooks.dbt.runner import read_run_results

PASSWORD = "s3cret-pw"
# Starts a grandchild that would outlive its parent, records both pids, then sleeps past any test timeout.
SPAWNER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(sys.argv[1] + ".tmp", "w") as pids:
        pids.write(f"{os.getpid()} {grandchild.pid}")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    print("spawned", flush=True)
    time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped yet does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return not alive(pid)


def read_pids(path: Path, seconds: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, "the child never started its grandchild"
        time.sleep(0.05)
    child, grandchild = path.read_text().split()
    return int(child), int(grandchild)


class TestProcessGroup:
    def test_timeout_kills_the_child_and_its_grandchild(self, tmp_path: Path) -> None:
        pids = tmp_path / "pids"
        started = time.monotonic()

        outcome = run_in_process_group(
            [sys.executable, "-c", SPAWNER, str(pids)], cwd=tmp_path, env=os.environ, timeout=3
        )

        assert time.monotonic() - started < 60
        assert (outcome.timed_out, outcome.returncode) == (True, None)
        assert outcome.elapsed_seconds >= 3
        child, grandchild = read_pids(pids)
        assert wait_gone(child)
        assert wait_gone(grandchild), f"grandchild {grandchild} outlived the timeout"
        assert "spawned" in outcome.output

    def test_an_interrupted_wait_kills_the_group_and_reraises(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pids = tmp_path / "pids"
        real_wait = subprocess.Popen.wait

        def interrupted(self: subprocess.Popen[bytes], timeout: float | None = None) -> int:
            if timeout is None:
                return real_wait(self)
            read_pids(pids)
            raise KeyboardInterrupt  # what Airflow stopping the task looks like from here

        monkeypatch.setattr(subprocess.Popen, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_in_process_group(
                [sys.executable, "-c", SPAWNER, str(pids)], cwd=tmp_path, env=os.environ, timeout=60
            )

        child, grandchild = read_pids(pids)
        assert wait_gone(child)
        assert wait_gone(grandchild)

    def test_the_child_leads_its_own_session(self, tmp_path: Path) -> None:
        outcome = run_in_process_group(
            [
                sys.executable,
                "-c",
                "import os; print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())",
            ],
            cwd=tmp_path,
            env=os.environ,
            timeout=30,
        )
        assert (outcome.timed_out, outcome.returncode, outcome.output.split()) == (False, 0, ["True", "True"])

    def test_exit_code_and_stderr_are_kept(self, tmp_path: Path) -> None:
        outcome = run_in_process_group(
            [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
            cwd=tmp_path,
            env=os.environ,
            timeout=30,
        )
        assert (outcome.timed_out, outcome.returncode) == (False, 3)
        assert outcome.output.split() == ["out", "err"]


class TestRedaction:
    def test_the_password_and_colours_never_reach_the_output_or_excerpt(self, tmp_path: Path) -> None:
        script = (
            "import os\n"
            "print('\\x1b[32mPASS\\x1b[0m model.shop.a')\n"
            f"print('connecting with', os.environ[{PASSWORD_ENV!r}])\n"
            "print('snowflake://etl:other-token@acme/db')\n"
            "print('Completed with 1 error:')\n"
            f"print('Database Error: login {PASSWORD} refused')\n"
        )
        outcome = run_in_process_group(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            env=dbt_environment(PASSWORD),
            timeout=30,
            secrets=[PASSWORD],
        )

        assert outcome.returncode == 0
        assert PASSWORD not in outcome.output
        assert "other-token" not in outcome.output
        assert "\x1b[" not in outcome.output
        assert "connecting with ***REDACTED***" in outcome.output
        excerpt = dbt_log_excerpt(outcome.output)
        assert excerpt.startswith("Completed with 1 error:")
        assert "login ***REDACTED*** refused" in excerpt
        assert PASSWORD not in excerpt

    def test_run_results_are_read_redacted(self, tmp_path: Path) -> None:
        path = tmp_path / "run_results.json"
        assert read_run_results(path) is None
        path.write_text(
            '{"results": [{"unique_id": "model.shop.a", "status": "error", "message": "pw s3cret-pw"}]}'
        )
        text, (node,) = read_run_results(path, secrets=[PASSWORD]) or ("", [])
        assert PASSWORD not in text
        assert (node.unique_id, node.status, node.message) == ("model.shop.a", "error", "pw ***REDACTED***")


class TestEnvironment:
    def test_password_only_by_variable_and_no_telemetry(self) -> None:
        env = dbt_environment(PASSWORD, {"PATH": "/bin", "DBT_USE_COLORS": "True"})
        assert env == {
            "PATH": "/bin",
            PASSWORD_ENV: PASSWORD,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_USE_COLORS": "False",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }


class TestExcerpt:
    def test_starts_at_the_error_summary(self) -> None:
        output = (
            "PASS x\n" * 1000 + "Completed with 1 error:\n  Database Error in model a\nDone. PASS=1 ERROR=1\n"
        )
        assert dbt_log_excerpt(output).startswith("Completed with 1 error:")
        assert dbt_log_excerpt("a" * 10 + "tail", limit=4) == "tail"

    def test_without_a_summary_the_tail_and_at_most_the_limit(self) -> None:
        output = "line\n" * 2000
        assert dbt_log_excerpt(output) == output[-4000:]
        assert len(dbt_log_excerpt("Completed with 2 errors:\n" + "x" * 9000)) == 4000
        assert dbt_log_excerpt("anything", limit=0) == ""
