"""
Artifacts in an S3 bucket (AWS or an S3-compatible server that supports conditional writes).

Exclusive create is a conditional write: ``PutObject`` with ``If-None-Match: *``. The server stores the object
only if the key does not exist yet and answers ``412 Precondition Failed`` otherwise; the check and the write
are one atomic step on the server, so of any number of racing writers exactly one succeeds. A ``409
ConditionalRequestConflict`` (another conditional write on the key still in flight) is retried: the retry
then either wins or meets the other writer's object (412). A ``PutObject`` is atomic, so a reader never sees
half an object.

Each create tags its object with a random writer token (user metadata). When the SDK retried a request whose
first attempt had in fact been stored, the retry meets its own object (412): the token tells this writer that
it won, rather than taking the write for someone else's.

Credentials and endpoint come from the Airflow connection ``[selfheal] artifacts_conn_id``: ``login`` is the
access key id, ``password`` the secret access key, extras ``endpoint_url`` (an S3-compatible server),
``region_name`` and ``addressing_style`` (``path`` or ``virtual``). Without a connection id boto3's default
chain applies (environment, instance or task role). boto3 is imported only when the store is first used.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from airflow_selfheal.hooks.artifacts.base import ArtifactStoreError

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: The user-metadata key (``x-amz-meta-...``) that carries the creating writer's token.
WRITER_METADATA = "selfheal-writer"
#: Attempts at a create answered ``409 ConditionalRequestConflict``, and the pause before the n-th retry.
CONFLICT_ATTEMPTS = 6
CONFLICT_BACKOFF_SECONDS = 0.05
_PRECONDITION_FAILED = frozenset({"PreconditionFailed", "412"})
_CONFLICT = frozenset({"ConditionalRequestConflict", "409", "OperationAborted"})
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_REFUSED_CREDENTIALS = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AuthorizationHeaderMalformed",
        "403",
    }
)
_UNSUPPORTED = frozenset({"NotImplemented", "501"})


class S3Backend:
    """
    The artifacts under one ``s3://bucket/prefix``.

    :param url: ``s3://<bucket>`` or ``s3://<bucket>/<prefix>``.
    :param conn_id: the Airflow connection with the credentials and endpoint; None for boto3's default chain.
    """

    def __init__(self, url: str, conn_id: str | None) -> None:
        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.root = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.conn_id = conn_id or None
        if not self.bucket:
            raise ArtifactStoreError(
                f"artifacts root {url!r} names no bucket; set [selfheal] artifacts_root to s3://<bucket>/<prefix>"
            )
        self.endpoint_url: str | None = None
        self._client: Any = None
        self._lock = threading.Lock()

    # -- keys ------------------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, folder: str) -> str:
        key = self._key(folder) if folder else self.prefix
        return f"{key}/" if key else ""

    def url(self, key: str) -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self._key(key)}"

    # -- operations ------------------------------------------------------------------------------------------

    def create(self, key: str, data: bytes) -> bool:
        """``PutObject`` with ``If-None-Match: *``; False when the key exists (412)."""
        from botocore.exceptions import ClientError

        token = uuid.uuid4().hex
        client = self.client()
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=data,
                    IfNoneMatch="*",
                    ContentType="application/json" if key.endswith(".json") else "application/octet-stream",
                    Metadata={WRITER_METADATA: token},
                )
            except ClientError as exc:
                code = _code(exc)
                if code in _PRECONDITION_FAILED:
                    return self._written_by(key, token)
                if code in _CONFLICT:
                    log.debug("Concurrent conditional write on %s; retrying", self.url(key))
                    time.sleep(CONFLICT_BACKOFF_SECONDS * (attempt + 1))
                    continue
                raise self._error(f"create {self.url(key)}", exc) from None
            except Exception as exc:  # noqa: BLE001 - translated to a message naming the root and the fix
                raise self._error(f"create {self.url(key)}", exc) from None
            return True
        if self.exists(key):
            return self._written_by(key, token)
        raise ArtifactStoreError(
            f"artifacts root {self.root}: creating {self.url(key)} met a concurrent write "
            f"{CONFLICT_ATTEMPTS} times (409 ConditionalRequestConflict) and nothing was stored; try again"
        )

    def _written_by(self, key: str, token: str) -> bool:
        """Whether the object under ``key`` is the one this writer's ``token`` tagged."""
        head = self._head(key)
        if head is None:  # removed since (quarantined): not ours to claim
            return False
        return bool(head.get("Metadata", {}).get(WRITER_METADATA) == token)

    def read(self, key: str) -> bytes:
        """``GetObject``."""
        body = self._call(
            f"read {self.url(key)}",
            lambda client: client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read(),
        )
        if body is None:
            raise FileNotFoundError(f"{self.url(key)} does not exist")
        return bytes(body)

    def exists(self, key: str) -> bool:
        """``HeadObject``."""
        return self._head(key) is not None

    def _head(self, key: str) -> dict[str, Any] | None:
        head: dict[str, Any] | None = self._call(
            f"read {self.url(key)}", lambda client: client.head_object(Bucket=self.bucket, Key=self._key(key))
        )
        return head

    def files(self, folder: str) -> list[str]:
        """The objects directly under the folder (``ListObjectsV2`` with a ``/`` delimiter)."""
        prefix = self._folder(folder)
        names = []
        for page in self._pages(prefix):
            for item in page.get("Contents", ()):
                name = str(item["Key"])[len(prefix) :]
                if name and "/" not in name and not name.startswith("."):
                    names.append(name)
        return names

    def folders(self, folder: str) -> list[str]:
        """The common prefixes directly under the folder."""
        prefix = self._folder(folder)
        names = []
        for page in self._pages(prefix):
            for item in page.get("CommonPrefixes", ()):
                name = str(item["Prefix"])[len(prefix) :].rstrip("/")
                if name and not name.startswith("."):
                    names.append(name)
        return names

    def _pages(self, prefix: str) -> list[dict[str, Any]]:
        def pages(client: Any) -> list[dict[str, Any]]:
            paginator = client.get_paginator("list_objects_v2")
            return list(paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"))

        listed: list[dict[str, Any]] | None = self._call(f"list s3://{self.bucket}/{prefix}", pages)
        return listed or []

    def delete(self, key: str) -> None:
        """``DeleteObject``."""
        self._call(
            f"delete {self.url(key)}",
            lambda client: client.delete_object(Bucket=self.bucket, Key=self._key(key)),
        )

    def _call(self, action: str, request: Callable[[Any], Any]) -> Any:
        """``request(client)``; None for a missing key, :class:`ArtifactStoreError` for any other failure."""
        from botocore.exceptions import ClientError

        try:
            return request(self.client())
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise self._error(action, exc) from None
        except ArtifactStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated to a message naming the root and the fix
            raise self._error(action, exc) from None

    # -- the client ------------------------------------------------------------------------------------------

    def client(self) -> Any:
        """
        The boto3 S3 client, made on first use from the connection.

        Clients are shared, within the process, by every store whose connection resolves to the same
        endpoint, region and credentials (boto3's clients are thread-safe, and making one costs a fraction of a
        second); a rotated secret resolves to a new client.
        """
        with self._lock:
            if self._client is None:
                options = self._client_options()
                identity = tuple(sorted(options.items()))
                with _CLIENTS_LOCK:
                    client = _CLIENTS.get(identity)
                    if client is None:
                        client = _CLIENTS[identity] = _new_client(options)
                self._client = client
            return self._client

    def _client_options(self) -> dict[str, Any]:
        if not self.conn_id:
            return {}
        from airflow.providers.common.compat.sdk import BaseHook

        try:
            connection = BaseHook.get_connection(self.conn_id)
        except Exception as exc:  # noqa: BLE001 - the message must not echo a connection URI with its secret
            missing = "NotFound" in type(exc).__name__
            raise ArtifactStoreError(
                f"artifacts root {self.root}: the connection {self.conn_id!r} ([selfheal] artifacts_conn_id) "
                + ("is not defined" if missing else f"cannot be read ({type(exc).__name__})")
                + ". Fix: define it as an 'aws' connection (login: access key id, password: secret access "
                "key, extras endpoint_url and region_name as needed), or unset [selfheal] artifacts_conn_id "
                "to use boto3's default credential chain."
            ) from None
        options: dict[str, Any] = {}
        if bool(connection.login) != bool(connection.password):
            raise ArtifactStoreError(
                f"artifacts root {self.root}: the connection {self.conn_id!r} ([selfheal] artifacts_conn_id) "
                "needs both a login (access key id) and a password (secret access key), or neither to use "
                "boto3's default credential chain."
            )
        if connection.login:
            options["aws_access_key_id"] = connection.login
            options["aws_secret_access_key"] = connection.password
        extra = connection.extra_dejson or {}
        for name in ("endpoint_url", "region_name", "addressing_style"):
            if extra.get(name):
                options[name] = str(extra[name])
        self.endpoint_url = options.get("endpoint_url")
        return options

    # -- errors ----------------------------------------------------------------------------------------------

    def _credentials(self) -> str:
        if self.conn_id:
            return f"the connection {self.conn_id!r} ([selfheal] artifacts_conn_id)"
        return "boto3's default credential chain (no [selfheal] artifacts_conn_id is set)"

    def _endpoint(self) -> str:
        if not self.endpoint_url:
            return "AWS S3"
        parts = urlsplit(self.endpoint_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def _error(self, action: str, exc: Exception) -> ArtifactStoreError:
        """A message naming the root, the connection and the fix; never the credentials."""
        from botocore.exceptions import (
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        where = f"artifacts root {self.root} ({self._endpoint()}, credentials from {self._credentials()})"
        code = _code(exc)
        if code == "NoSuchBucket":
            return ArtifactStoreError(
                f"{where}: the bucket {self.bucket!r} does not exist ({action}). Fix: create it, or correct "
                "[selfheal] artifacts_root (and the connection's endpoint_url)."
            )
        if code in _REFUSED_CREDENTIALS:
            return ArtifactStoreError(
                f"{where}: the object store refused the request ({code}, {action}). Fix: check the connection's "
                f"access key id and secret, and that they may read, write and list s3://{self.bucket}."
            )
        if code in _UNSUPPORTED:
            return ArtifactStoreError(
                f"{where}: the server does not support {action.split(' ')[0]} as used here ({code}); exclusive "
                "create needs conditional writes (PutObject with If-None-Match: *). Use AWS S3 or an "
                "S3-compatible server that supports conditional writes."
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return ArtifactStoreError(
                f"{where}: no credentials were found ({action}). Fix: set [selfheal] artifacts_conn_id to a "
                "connection with login (access key id) and password (secret access key), or give the worker "
                "credentials through boto3's default chain (environment, profile or role)."
            )
        if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
            return ArtifactStoreError(
                f"{where}: cannot reach the object store ({action}). Fix: check the connection's endpoint_url "
                "and that the worker can reach it."
            )
        status = f"HTTP {_status(exc)}" if _status(exc) else type(exc).__name__
        return ArtifactStoreError(f"{where}: {action} failed ({code or 'error'}, {status}).")


_CLIENTS: dict[tuple[tuple[str, Any], ...], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _new_client(options: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    options = dict(options)
    addressing = options.pop("addressing_style", None)
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=60,
        s3={"addressing_style": addressing} if addressing else None,
    )
    return boto3.session.Session().client("s3", config=config, **options)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code") or _status(exc) or "")


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None
