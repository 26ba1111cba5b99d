"""The loopback api-server stand-in for the backstop's tests."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from tests.support.backstop import FakeApiServer

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    """A running stand-in; shut down after the test."""
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
