"""A real ``airflow api-server`` on loopback, sharing the metadata DB, and the UI's approval call.

``dag.test()`` parks a human-in-the-loop task in AWAITING_INPUT until a response is recorded from outside.
The Airflow UI records it with ``PATCH …/hitlDetails``; :func:`answer_hitl` makes that same call, so the
demo and the tests approve exactly as a person in the UI would.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dev.warehouse import free_port


class ApiServerError(RuntimeError):
    """The api-server did not start, or an approval call failed."""


@contextlib.contextmanager
def running_api_server(log_path: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Start ``airflow api-server`` on 127.0.0.1 (never 0.0.0.0) and yield its base URL until the block ends.

    Everyone is admin (``SIMPLE_AUTH_MANAGER_ALL_ADMINS``) unless ``extra_env`` says otherwise: fine on
    loopback for a demo, never for a shared machine.
    """
    import httpx

    port = free_port()
    env = {**os.environ, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", **(extra_env or {})}
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)]
            + ["--workers", "1", "--apps", "core"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise ApiServerError(f"api-server exited with {server.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ApiServerError(f"api-server not healthy after 120s; see {log_path}")
            time.sleep(0.5)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def pending_hitl(base_url: str, dag_id: str) -> list[dict[str, Any]]:
    """Human-in-the-loop requests of ``dag_id`` still waiting for a response."""
    import httpx

    response = httpx.get(
        f"{base_url}/api/v2/dags/{dag_id}/dagRuns/~/hitlDetails",
        params={"response_received": "false"},
        timeout=10,
    )
    response.raise_for_status()
    return list(response.json().get("hitl_details", []))


def answer_hitl(
    base_url: str, dag_id: str, run_id: str, task_id: str, option: str, *, map_index: int = -1
) -> dict[str, Any]:
    """Record ``option`` (e.g. ``Approve``) for a waiting task: the same PATCH the Airflow UI sends."""
    import httpx

    response = httpx.patch(
        f"{base_url}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/hitlDetails",
        json={"chosen_options": [option], "params_input": {}},
        timeout=10,
    )
    if response.status_code >= 300:
        raise ApiServerError(f"answering {task_id} failed: {response.status_code} {response.text[:300]}")
    return dict(response.json())


def answer_when_asked(
    base_url: str, dag_id: str, task_id: str, option: str, *, timeout: float = 600.0
) -> tuple[threading.Thread, dict[str, Any]]:
    """In a background thread, wait for ``task_id`` to ask for input, then answer ``option``.

    ``dag.test()`` must run in the main thread, so the person clicking in the UI is played by this thread.
    The returned dict receives ``answered_at``, ``run_id`` and ``response`` (or ``error``).
    """
    outcome: dict[str, Any] = {}

    def play() -> None:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                for detail in pending_hitl(base_url, dag_id):
                    task_instance = detail.get("task_instance", {})
                    if task_instance.get("task_id") == task_id:
                        run_id = task_instance["dag_run_id"]
                        outcome["run_id"] = run_id
                        outcome["asked"] = detail
                        outcome["response"] = answer_hitl(base_url, dag_id, run_id, task_id, option)
                        outcome["answered_at"] = time.time()
                        return
                time.sleep(1)
            outcome["error"] = f"{task_id} never asked for input within {timeout:.0f}s"
        except Exception as exc:  # noqa: BLE001 - reported to the caller through the outcome
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=play, name=f"ui-user-{task_id}", daemon=True)
    thread.start()
    return thread, outcome
