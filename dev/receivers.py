"""A real HTTP server on loopback that records webhook deliveries (Slack, PagerDuty Events v2): the demo's on-call.

Responses can be scripted per request, to exercise retries (429, 5xx) and non-retryable errors (400).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


@dataclass
class Delivery:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    host: str
    port: int
    deliveries: list[Delivery] = field(default_factory=list)
    scripted: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def respond_next(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        """Answer the next request with ``status`` instead of the default success."""
        self.scripted.append((status, headers or {}, body))


def enqueue_answer(body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Answer as PagerDuty Events v2 does: 202 for a well-formed event, 400 naming the first problem otherwise."""
    headers = {"Content-Type": "application/json"}
    try:
        event = json.loads(body)
    except ValueError:
        return 400, headers, b'{"status": "invalid event", "message": "Event object is invalid"}'
    problems = []
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("'event_action' is missing or invalid")
    if not event.get("routing_key"):
        problems.append("'routing_key' is missing")
    if event.get("event_action") == "trigger" and not (event.get("payload") or {}).get("summary"):
        problems.append("'payload.summary' is missing")
    if event.get("event_action") in ("acknowledge", "resolve") and not event.get("dedup_key"):
        problems.append("'dedup_key' is required for acknowledge and resolve")
    if problems:
        reply = {"status": "invalid event", "message": "Event object is invalid", "errors": problems}
        return 400, headers, json.dumps(reply).encode()
    reply = {"status": "success", "message": "Event processed", "dedup_key": event.get("dedup_key") or "x"}
    return 202, headers, json.dumps(reply).encode()


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """Serve on 127.0.0.1 (an ephemeral port) until the ``with`` block ends."""
    receiver = Receiver("127.0.0.1", 0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.deliveries.append(Delivery("POST", self.path, dict(self.headers.items()), body))
            if receiver.scripted:
                status, headers, reply = receiver.scripted.popleft()
            elif self.path.startswith("/v2/enqueue"):
                status, headers, reply = enqueue_answer(body)
            else:
                status, headers, reply = 200, {"Content-Type": "text/plain"}, b"ok"
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
