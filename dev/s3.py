"""
An S3-compatible server on loopback for tests and demos: moto's, in this process, with a bucket ready.

.. code-block:: python

    with s3_server() as s3:
        os.environ.update(s3.environ("selfheal_s3"))  # the Airflow connection
        store = ArtifactStore(root=s3.root_url("run-1"), conn_id="selfheal_s3")

moto answers ``PutObject`` with ``If-None-Match: *`` as S3 does when the key exists (412), but it checks and
then writes in two steps, so two requests racing on one key can both be stored (seen with a short thread
switch interval). S3 makes the check and the write one atomic step; so that race tests exercise the store and
not moto, the server here handles one ``PutObject`` at a time (:func:`serialise_puts`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_selfheal.hooks.artifacts import ArtifactStore

ACCESS_KEY_ID = "selfheal-test-key"
SECRET_ACCESS_KEY = "selfheal-test-secret-not-a-real-one"  # noqa: S105 - the loopback server's own
REGION = "us-east-1"

_PUT_LOCK = threading.Lock()


@dataclass(frozen=True)
class S3Server:
    """A running loopback S3 server and its bucket."""

    endpoint_url: str
    bucket: str
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    region_name: str = REGION

    def root_url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>``; a fresh random prefix when none is given."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex}"

    def connection_json(self, **extra: Any) -> str:
        """The Airflow connection (JSON form) with these credentials and endpoint."""
        return json.dumps(
            {
                "conn_type": "aws",
                "login": self.access_key_id,
                "password": self.secret_access_key,
                "extra": {"endpoint_url": self.endpoint_url, "region_name": self.region_name, **extra},
            }
        )

    def environ(self, conn_id: str, **extra: Any) -> dict[str, str]:
        """The environment variable that defines the connection ``conn_id``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(**extra)}

    def client(self) -> Any:
        """A boto3 client for the server, e.g. to create another bucket or look at objects."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region_name,
        )


def serialise_puts() -> None:
    """Make moto's ``PutObject`` handler run one request at a time, so its ``If-None-Match`` check is atomic."""
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    if getattr(original, "_selfheal_serialised", False):
        return

    def put_object(self: Any) -> Any:
        with _PUT_LOCK:
            return original(self)

    put_object._selfheal_serialised = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]


@contextlib.contextmanager
def s3_server(bucket: str | None = None) -> Iterator[S3Server]:
    """
    Start moto's S3 server on 127.0.0.1 (a free port), create a bucket, and stop the server afterwards.

    :param bucket: the bucket's name; a fresh one by default (moto's state is shared by all its servers in a
        process, so each server gets its own bucket).
    """
    from moto.server import ThreadedMotoServer

    serialise_puts()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        running = S3Server(
            endpoint_url=f"http://{host}:{port}", bucket=bucket or f"selfheal-{uuid.uuid4().hex[:12]}"
        )
        running.client().create_bucket(Bucket=running.bucket)
        yield running
    finally:
        server.stop()


def overwrite(store: ArtifactStore, relative: str, data: bytes) -> None:
    """Replace a record behind the store's back, as a crash or a person might: for tests of corrupt records."""
    location = store.url(relative)
    if location.startswith("file://"):
        path = Path(location[len("file://") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    bucket, key = location[len("s3://") :].split("/", 1)
    store.backend.client().put_object(Bucket=bucket, Key=key, Body=data)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    """``python -m dev.s3 serve --port N --bucket B``: the loopback S3 server in the foreground (for `make up`)."""
    import argparse
    import signal
    import sys
    import time

    parser = argparse.ArgumentParser(prog="python -m dev.s3", description=main.__doc__)
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", required=True)
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer

    serialise_puts()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    S3Server(endpoint_url=f"http://127.0.0.1:{args.port}", bucket=args.bucket).client().create_bucket(
        Bucket=args.bucket
    )
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.is_set():
        time.sleep(0.5)
    server.stop()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
