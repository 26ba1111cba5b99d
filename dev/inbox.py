"""The local stack's on-call inbox: receives Slack webhooks and PagerDuty Events v2, and lists what arrived.

``python -m dev.inbox --port 8025 --record inbox.jsonl`` serves on 127.0.0.1:

* ``POST /services/...``: a Slack incoming webhook (answers ``ok``);
* ``POST /v2/enqueue``: a PagerDuty event, answered as PagerDuty does (202, or 400 naming the problem);
* ``GET /``: a page listing what on-call received, newest first, with each PagerDuty incident's state;
* ``GET /deliveries.json``: the same as JSON, for tests and ``make mttr``.

Every delivery is appended to the record file with the time it arrived, so a restarted inbox keeps its list.
Bodies are shown as text, escaped; nothing in them is run or followed.
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dev.receivers import enqueue_answer

_LOCK = threading.Lock()


def read_deliveries(record: Path) -> list[dict[str, Any]]:
    """Every delivery in the record file, oldest first; a torn last line (a crash mid-write) is skipped."""
    if not record.exists():
        return []
    deliveries = []
    for line in record.read_text(encoding="utf-8").splitlines():
        try:
            deliveries.append(json.loads(line))
        except ValueError:
            continue
    return deliveries


def summarise(delivery: dict[str, Any]) -> dict[str, str]:
    """The kind, the headline and the detail of one delivery, as the page shows them."""
    body = delivery.get("body")
    if not isinstance(body, dict):
        return {"kind": "unreadable", "headline": str(body)[:200], "detail": "", "key": ""}
    if delivery.get("path", "").startswith("/v2/enqueue"):
        payload = body.get("payload") or {}
        details = payload.get("custom_details") or {}
        return {
            "kind": f"PagerDuty {body.get('event_action', '?')}",
            "headline": str(payload.get("summary") or ""),
            "detail": str(details.get("approval_link") or ""),
            "key": str(body.get("dedup_key") or ""),
        }
    return {"kind": "Slack", "headline": str(body.get("text") or "")[:300], "detail": "", "key": ""}


def incident_states(deliveries: list[dict[str, Any]]) -> dict[str, str]:
    """Each PagerDuty dedup key's last action: ``trigger``, ``acknowledge`` or ``resolve``."""
    states: dict[str, str] = {}
    for delivery in deliveries:
        body = delivery.get("body")
        if delivery.get("path", "").startswith("/v2/enqueue") and isinstance(body, dict):
            if body.get("dedup_key"):
                states[str(body["dedup_key"])] = str(body.get("event_action"))
    return states


def render_page(deliveries: list[dict[str, Any]]) -> str:
    """The inbox page: one row a delivery, newest first, and the open PagerDuty incidents."""
    states = incident_states(deliveries)
    open_keys = sorted(key for key, action in states.items() if action != "resolve")
    rows = []
    for delivery in reversed(deliveries):
        summary = summarise(delivery)
        when = time.strftime("%H:%M:%S", time.localtime(float(delivery.get("received_at", 0))))
        detail = summary["detail"]
        link = f'<a href="{html.escape(detail)}">approval</a>' if detail.startswith("http") else ""
        rows.append(
            "<tr>"
            f"<td>{when}</td><td>{html.escape(summary['kind'])}</td>"
            f"<td><pre>{html.escape(summary['headline'])}</pre></td>"
            f"<td>{html.escape(states.get(summary['key'], ''))}</td><td>{link}</td>"
            "</tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>on-call inbox</title>"
        "<meta http-equiv='refresh' content='5'>"
        "<style>body{font-family:sans-serif}td{vertical-align:top;padding:4px 8px;border-bottom:1px solid #ddd}"
        "pre{white-space:pre-wrap;margin:0}</style></head><body>"
        f"<h1>On-call inbox</h1><p>{len(deliveries)} received; open PagerDuty incidents: {len(open_keys)}</p>"
        "<table><tr><th>time</th><th>what</th><th>headline</th><th>incident state</th><th></th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )


def make_server(host: str, port: int, record: Path) -> ThreadingHTTPServer:
    """The inbox's HTTP server (not yet serving); refuses any host but loopback, since it has no auth."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to bind the inbox to {host}: it has no auth. Use 127.0.0.1.")
    record.parent.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            entry = {"received_at": time.time(), "path": self.path, "body": body}
            with _LOCK, record.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
            if self.path.startswith("/v2/enqueue"):
                status, headers, reply = enqueue_answer(raw)
            else:
                status, headers, reply = 200, {"Content-Type": "text/plain"}, b"ok"
            self._send(status, headers.get("Content-Type", "text/plain"), reply)

        def do_GET(self) -> None:
            deliveries = read_deliveries(record)
            if self.path.startswith("/deliveries.json"):
                self._send(200, "application/json", json.dumps(deliveries).encode())
            elif self.path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", render_page(deliveries).encode())
            elif self.path.startswith("/health"):
                self._send(200, "text/plain", b"ok")
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, content_type: str, reply: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.inbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True, help="the JSONL file deliveries are kept in")
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.record)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
