"""The backstop's test doubles: REST-shaped task instances and logs, and a loopback stand-in for the api-server."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

NOW = datetime.now(timezone.utc)
SINCE = NOW - timedelta(hours=6)

# What Airflow 3.3's supervisor writes into the task log when the task process was SIGKILLed
# (airflow/sdk/execution_time/supervisor.py), as the REST log endpoint returns it.
OOM_LOG: dict[str, Any] = {
    "content": [
        {"timestamp": "2026-01-01T00:00:00Z", "event": "::group::Log message source details"},
        {"event": "/opt/airflow/logs/dag_id=shop/run_id=x/task_id=shop.stg_orders_run/attempt=1.log"},
        {"event": "::endgroup::"},
        {
            "timestamp": "2026-01-01T00:00:01Z",
            "level": "info",
            "event": "Running dbt run",
            "logger": "cosmos",
        },
        {
            "timestamp": "2026-01-01T00:00:09Z",
            "level": "critical",
            "event": "Process terminated by signal. Likely out of memory error (OOM). For more information, see "
            "https://airflow.apache.org/docs/apache-airflow/stable/troubleshooting.html",
            "signal": -9,
            "signal_name": "SIGKILL",
            "logger": "supervisor",
        },
    ],
    "continuation_token": None,
}


def task_instance(**overrides: Any) -> dict[str, Any]:
    """One item of ``GET /api/v2/dags/~/dagRuns/~/taskInstances``, trimmed to the fields that matter."""
    item = {
        "dag_id": "shop",
        "dag_run_id": "scheduled__2026-01-01T00:00:00+00:00",
        "task_id": "shop.stg_orders_run",
        "map_index": -1,
        "try_number": 1,
        "state": "failed",
        "end_date": (NOW - timedelta(minutes=30)).isoformat(),
        "operator": "DbtRunLocalOperator",
        "operator_name": "DbtRunLocalOperator",
    }
    item.update(overrides)
    return item


class FakeApiServer(ThreadingHTTPServer):
    """Answers the REST GETs the backstop makes, and the dispatch POST with 200 then 409 per run id."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.task_instances: list[dict[str, Any]] = []
        self.logs: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        self.server.requests.append(("GET", unquote(parts.path), query))
        segments = [unquote(segment) for segment in parts.path.split("/")]
        if parts.path.endswith("/taskInstances"):
            items = [
                item
                for item in self.server.task_instances
                if item["state"] in query["state"] and segments[4] in ("~", item["dag_id"])
            ]
            self._answer(200, {"task_instances": items, "total_entries": len(items)})
        elif "/logs/" in parts.path:
            log = self.server.logs.get(segments[8])
            self._answer(200, log) if log else self._answer(404, {"detail": "TaskInstance not found"})
        else:
            self._answer(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(("POST", self.path, {}))
        run_id = body["dag_run_id"]
        if run_id in self.server.runs:
            self._answer(409, {"detail": "exists"})
        else:
            self.server.runs[run_id] = body
            self._answer(200, {"dag_run_id": run_id, "state": "queued"})
