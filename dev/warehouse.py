"""The embedded Snowflake stand-in: a fakesnow server on loopback whose databases persist to files.

fakesnow's ``-s`` server keeps everything in memory and ignores ``-d``. To make a pipeline run and a later
repair run (separate processes) see the same data, we swap the server module's shared instance for one built
with ``FakeSnow(db_path=...)`` before serving. That is a private attribute, so fakesnow is pinned exactly.

Usage::

    python -m dev.warehouse start   [--port 8765] [--data-dir .demo/warehouse]   # background, waits until ready
    python -m dev.warehouse status
    python -m dev.warehouse stop
    python -m dev.warehouse serve   [--port 8765] [--data-dir ...]                # foreground

A database file becomes visible to a session only after a session has logged in naming that database, so
clients always pass ``database=`` when they connect (the demo profile and connection do).

fakesnow keeps what DuckDB cannot store (declared VARCHAR lengths, table comments, users, stages) in extension
tables of its in-memory ``_fs_global`` database, which ``db_path`` does not persist. Without them, every
``VARCHAR(16)`` reads back as ``TEXT`` after a restart, which the drift check saw as a type change of every
such column. :func:`_persist_global_metadata` attaches ``_fs_global`` from ``GLOBAL_METADATA_FILE`` in the data
directory instead, so those tables survive a restart like the databases do.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = int(os.environ.get("SELFHEAL_WAREHOUSE_PORT", "8765"))
DEFAULT_DATA_DIR = Path(os.environ.get("SELFHEAL_WAREHOUSE_DIR", REPO_ROOT / ".demo" / "warehouse"))
FAKESNOW_VERSION = "0.12.1"
# Not ``*.db``: fakesnow opens ``<data dir>/<DATABASE>.db`` for a database a session names.
GLOBAL_METADATA_FILE = "_fs_global.duckdb"


class WarehouseError(RuntimeError):
    """The stand-in could not be started or reached; the message names the cause and the fix."""


@dataclass(frozen=True)
class Warehouse:
    """Where a running stand-in listens, and how to reach it."""

    host: str
    port: int
    data_dir: Path

    def connect_kwargs(self, database: str = "DEMO", schema: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (the real connector)."""
        kwargs: dict[str, Any] = {
            "user": "selfheal",
            "password": "embedded",
            "account": "fakesnow",
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "database": database,
            "warehouse": "COMPUTE_WH",
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "network_timeout": 30,
            "login_timeout": 10,
        }
        if schema:
            kwargs["schema"] = schema
        return kwargs

    def airflow_conn_uri(self, database: str = "DEMO", schema: str = "ANALYTICS") -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON form) for the package's Snowflake hook and cosmos."""
        return json.dumps(
            {
                "conn_type": "snowflake",
                "login": "selfheal",
                "password": "embedded",
                "schema": schema,
                "extra": {
                    "account": "fakesnow",
                    "database": database,
                    "warehouse": "COMPUTE_WH",
                    "host": self.host,
                    "port": self.port,
                    "protocol": "http",
                },
            }
        )

    def connect(self, database: str = "DEMO", schema: str | None = None) -> Any:
        """Open a real ``snowflake.connector`` connection to the stand-in."""
        import snowflake.connector

        return snowflake.connector.connect(**self.connect_kwargs(database, schema))


def _pid_file(data_dir: Path) -> Path:
    return data_dir / "server.pid"


def _port_in_use(host: str, port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def free_port(host: str = DEFAULT_HOST) -> int:
    """Ask the kernel for a free TCP port on loopback."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(host: str, port: int, data_dir: Path) -> None:
    """Run the stand-in in the foreground until SIGTERM or SIGINT."""
    from importlib.metadata import version

    import uvicorn

    installed = version("fakesnow")

    if installed != FAKESNOW_VERSION:
        raise WarehouseError(
            f"fakesnow {installed} is installed but the stand-in relies on the private shared instance of "
            f"fakesnow {FAKESNOW_VERSION}. Fix: run `make venv` to install the locked version."
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise WarehouseError(f"refusing to bind the stand-in to {host}: it has no auth. Use 127.0.0.1.")
    if _port_in_use(host, port):
        raise WarehouseError(
            f"port {port} on {host} is already in use. Fix: stop whatever holds it "
            f"(`python -m dev.warehouse stop` if it is an old stand-in) or choose another port with "
            f"SELFHEAL_WAREHOUSE_PORT=<port>."
        )
    data_dir.mkdir(parents=True, exist_ok=True)

    import fakesnow.server
    from fakesnow.instance import FakeSnow

    shared = FakeSnow(db_path=str(data_dir))
    _persist_global_metadata(shared, data_dir)
    fakesnow.server.shared_fs = shared
    server = uvicorn.Server(
        uvicorn.Config(fakesnow.server.app, host=host, port=port, log_level="warning", access_log=False)
    )
    server.run()
    with contextlib.suppress(Exception):  # the WAL is replayed on the next start if this fails
        shared.duck_conn.execute("CHECKPOINT _fs_global")
    # DuckDB's bindings print harmless leak notices at interpreter teardown; the data is already on disk.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _persist_global_metadata(shared: Any, data_dir: Path) -> None:
    """
    Re-attach fakesnow's ``_fs_global`` database from a file in ``data_dir``, keeping its extension tables.

    ``FakeSnow()`` attaches it in memory and creates the extension tables and views in it; they are created with
    ``if not exists``, so running the same creation SQL on the file-backed copy creates them once and keeps what
    an earlier run stored.
    """
    from fakesnow import info_schema
    from fakesnow.instance import GLOBAL_DATABASE_NAME
    from fakesnow.transforms import show

    path = (data_dir / GLOBAL_METADATA_FILE).resolve()
    conn = shared.duck_conn
    conn.execute(f"DETACH {GLOBAL_DATABASE_NAME}")
    conn.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {GLOBAL_DATABASE_NAME}")
    conn.execute(info_schema.fs_global_creation_sql())
    conn.execute(show.fs_global_creation_sql())


def wait_ready(
    warehouse: Warehouse, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until a real connector session can run ``select 1``; raise a clear error otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise WarehouseError(
                f"the stand-in exited with code {proc.returncode} while starting; "
                f"see {warehouse.data_dir / 'server.log'}"
            )
        try:
            with socket.create_connection((warehouse.host, warehouse.port), timeout=1):
                pass
            conn = warehouse.connect()
            try:
                conn.cursor().execute("select 1").fetchall()
            finally:
                conn.close()
            return
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline, report the last cause
            last_error = exc
            time.sleep(0.2)
    raise WarehouseError(
        f"the stand-in on {warehouse.host}:{warehouse.port} was not ready after {timeout:.0f}s "
        f"(last error: {last_error}); see {warehouse.data_dir / 'server.log'}"
    )


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, data_dir: Path = DEFAULT_DATA_DIR) -> Warehouse:
    """Start the stand-in in the background, wait for readiness and record its pid."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    warehouse = Warehouse(host, port, data_dir)
    existing = _running_pid(data_dir)
    if existing is not None:
        wait_ready(warehouse, timeout=10)
        return warehouse
    if _port_in_use(host, port):
        raise WarehouseError(
            f"port {port} on {host} is already in use by another process. Fix: free it, or choose another "
            f"port with SELFHEAL_WAREHOUSE_PORT=<port>."
        )
    log = (data_dir / "server.log").open("ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dev.warehouse",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    _pid_file(data_dir).write_text(json.dumps({"pid": proc.pid, "host": host, "port": port}))
    try:
        wait_ready(warehouse, proc=proc)
    except Exception:
        _terminate(proc.pid)
        _pid_file(data_dir).unlink(missing_ok=True)
        raise
    return warehouse


def _running_pid(data_dir: Path) -> int | None:
    pid_file = _pid_file(data_dir)
    if not pid_file.exists():
        return None
    try:
        pid = int(json.loads(pid_file.read_text())["pid"])
        os.kill(pid, 0)
    except (ValueError, KeyError, ProcessLookupError, json.JSONDecodeError):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                return
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the background stand-in; return whether one was running."""
    data_dir = Path(data_dir).resolve()
    pid = _running_pid(data_dir)
    if pid is None:
        return False
    _terminate(pid)
    _pid_file(data_dir).unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def running(data_dir: Path, port: int | None = None, host: str = DEFAULT_HOST) -> Iterator[Warehouse]:
    """Run a stand-in for the duration of a ``with`` block (used by tests): started, ready, then stopped."""
    warehouse = start(host=host, port=port or free_port(host), data_dir=data_dir)
    try:
        yield warehouse
    finally:
        stop(warehouse.data_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.warehouse", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            serve(args.host, args.port, args.data_dir)
        elif args.command == "start":
            warehouse = start(args.host, args.port, args.data_dir)
            print(f"stand-in ready on {warehouse.host}:{warehouse.port}, data in {warehouse.data_dir}")
        elif args.command == "stop":
            print("stopped" if stop(args.data_dir) else "not running")
        else:
            pid = _running_pid(Path(args.data_dir).resolve())
            print(f"running (pid {pid})" if pid else "not running")
            return 0 if pid else 1
    except WarehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
