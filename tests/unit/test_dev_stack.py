"""The pieces of `make up` that need no running stack: the inbox page, the state file, ports and process groups."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from dev import inbox
from dev.stack import (
    StackError,
    State,
    alive,
    configured_ports,
    group_members,
    stack_processes,
    worker_hostname,
)
from dev.warehouse import free_port


def test_inbox_records_and_lists_what_on_call_received(tmp_path: Path) -> None:
    record = tmp_path / "inbox.jsonl"
    server = inbox.make_server("127.0.0.1", free_port(), record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        slack = httpx.post(f"{base}/services/T0/B0/x", json={"text": "<script>alert(1)</script> fix ready"})
        assert slack.status_code == 200
        event = {
            "event_action": "trigger",
            "routing_key": "r" * 32,
            "dedup_key": "abc",
            "payload": {"summary": "fix ready", "custom_details": {"approval_link": "http://127.0.0.1:1/x"}},
        }
        assert httpx.post(f"{base}/v2/enqueue", json=event).status_code == 202
        assert httpx.post(f"{base}/v2/enqueue", json={"event_action": "trigger"}).status_code == 400
        page = httpx.get(f"{base}/").text
        deliveries = httpx.get(f"{base}/deliveries.json").json()
    finally:
        server.shutdown()
        server.server_close()
    assert len(deliveries) == 3
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "open PagerDuty incidents: 1" in page
    assert 'href="http://127.0.0.1:1/x"' in page
    # A restarted inbox keeps its list: it is the record file.
    assert [d["path"] for d in inbox.read_deliveries(record)] == [d["path"] for d in deliveries]


def test_inbox_resolve_closes_the_incident_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    record = tmp_path / "inbox.jsonl"
    lines = [
        {"received_at": 1, "path": "/v2/enqueue", "body": {"event_action": "trigger", "dedup_key": "k"}},
        {"received_at": 2, "path": "/v2/enqueue", "body": {"event_action": "resolve", "dedup_key": "k"}},
    ]
    record.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"received_at": 3, "pa')
    deliveries = inbox.read_deliveries(record)
    assert len(deliveries) == 2
    assert inbox.incident_states(deliveries) == {"k": "resolve"}
    assert "open PagerDuty incidents: 0" in inbox.render_page(deliveries)


def test_inbox_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no auth"):
        inbox.make_server("0.0.0.0", 0, tmp_path / "x.jsonl")  # noqa: S104 - the refusal under test


def test_ports_come_from_the_environment_and_a_bad_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHEAL_STACK_API_PORT", "18080")
    assert configured_ports()["api"] == 18080
    monkeypatch.setenv("SELFHEAL_STACK_REDIS_PORT", "six")
    with pytest.raises(StackError, match="SELFHEAL_STACK_REDIS_PORT='six' is not a port number"):
        configured_ports()


def test_state_round_trips_and_a_missing_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="make up"):
        State.load(tmp_path)
    state = State(dir=str(tmp_path), ports={"api": 1, "inbox": 2, "s3": 3}, password="p", pids={"x": 5})
    state.save()
    loaded = State.load(tmp_path)
    assert loaded == state
    assert loaded.api_url == "http://127.0.0.1:1"


def test_worker_hostname_is_the_workers_own_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHEAL_STACK_HOSTNAME", "worker-b")
    assert worker_hostname() == "worker-b"
    monkeypatch.delenv("SELFHEAL_STACK_HOSTNAME")
    assert worker_hostname()


def test_process_groups_and_stack_processes_are_found(tmp_path: Path) -> None:
    marker = str(tmp_path / "stack-marker")
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", marker],
        start_new_session=True,
        env={**os.environ, "SELFHEAL_STACK_DIR": marker},
    )
    try:
        deadline = time.monotonic() + 10
        while child.pid not in group_members(child.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(child.pid) == [child.pid]
        assert alive(child.pid)
        assert child.pid in stack_processes(Path(marker))
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid)
    assert group_members(child.pid) == []
    assert stack_processes(Path(marker)) == []
