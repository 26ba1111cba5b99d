"""
Records under the configured artifacts root, shared by every worker.

Writes never overwrite: a record is created exclusively (first writer wins, which is how dedup markers and
sequence claims work) or under a new unique name (how histories grow), and it is created whole: a reader
never sees half a record. A record that cannot be read is reported with its location and a recovery command;
it is never silently replaced.

Two kinds of root (``[selfheal] artifacts_root``) keep those promises:

* a folder (a plain path or ``file://``), local or NFS: a record is written to a hidden temporary file and
  hard-linked to its name, which fails when the name exists (:mod:`~airflow_selfheal.hooks.artifacts.local`);
* ``s3://bucket/prefix``: S3 conditional writes, ``PutObject`` with ``If-None-Match: *``, which the server
  refuses with ``412 Precondition Failed`` when the key exists (:mod:`~airflow_selfheal.hooks.artifacts.s3`).
  Credentials and endpoint come from the connection ``[selfheal] artifacts_conn_id``. An S3-compatible server
  (MinIO, Ceph, ...) must support conditional writes: one that ignores ``If-None-Match`` would let two workers
  both "win", so check its documentation before pointing the store at it.

Other schemes are refused: their file systems offer no atomic exclusive create.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.config import get_settings
from airflow_selfheal.hooks.artifacts.base import ArtifactCorruptError, ArtifactStoreError, Backend

if TYPE_CHECKING:
    import builtins

    from airflow.sdk import ObjectStoragePath

__all__ = ["ArtifactCorruptError", "ArtifactStore", "ArtifactStoreError"]

#: How many ``<name>.corrupt``, ``<name>.corrupt-2``, ... names :meth:`ArtifactStore.quarantine` tries.
MAX_QUARANTINE_NAMES = 100


class ArtifactStore:
    """
    Records under a root folder or bucket: exclusive create, read, list; nothing is ever overwritten.

    .. code-block:: python

        store = ArtifactStore()  # the [selfheal] artifacts_root
        if store.create_json("notifications/drift/claim-000001.json", {"claimed_at": now}):
            ...  # this worker won the claim
        for name in store.list("notifications/drift"):
            record = store.read_json(f"notifications/drift/{name}")

    Paths are slash-separated and relative to the root; ``.``, ``..`` and empty segments are refused.

    :param root: URL of the root (a folder, ``file://...`` or ``s3://bucket/prefix``); defaults to
        ``[selfheal] artifacts_root``.
    :param conn_id: Airflow connection of an ``s3://`` root; defaults to ``[selfheal] artifacts_conn_id``; ``""``
        for none (boto3's default credential chain).
    :raises ArtifactStoreError: for a root of another scheme.
    """

    def __init__(self, root: str | None = None, conn_id: str | None = None) -> None:
        settings = get_settings() if root is None or conn_id is None else None
        url = root or (settings.artifacts_root if settings else "")
        connection = conn_id if conn_id is not None else (settings.artifacts_conn_id if settings else None)
        self.conn_id: str | None = connection or None
        self.backend: Backend = _backend(url, self.conn_id)
        #: The root's URL: ``file:///...`` or ``s3://bucket/prefix``.
        self.root: str = self.backend.root

    # -- writing ---------------------------------------------------------------------------------------------

    def create_bytes(self, relative: str, data: bytes) -> bool:
        """
        Create the record only if it does not exist yet, whole or not at all.

        :param relative: the record's path under the root.
        :param data: its content.
        :return: whether this call created it; False when it existed (another writer won).
        :raises ArtifactStoreError: when the root cannot be written (the message names the fix).
        """
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"create_bytes() takes bytes, got {type(data).__name__}")
        return self.backend.create(_key(relative), bytes(data))

    def create_json(self, relative: str, data: Any) -> bool:
        """
        Create a JSON record only if it does not exist yet (see :meth:`create_bytes`).

        :param relative: the record's path under the root.
        :param data: JSON-serialisable; stored indented with sorted keys, other types as ``str()``.
        :return: whether this call created it.
        """
        payload = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        return self.create_bytes(relative, payload)

    # -- reading ---------------------------------------------------------------------------------------------

    def read_bytes(self, relative: str) -> bytes:
        """
        A record's content.

        :raises FileNotFoundError: naming the record, when it does not exist.
        :raises ArtifactCorruptError: when a folder is where the record should be.
        """
        try:
            return self.backend.read(_key(relative))
        except IsADirectoryError:
            raise self.folder_in_place(relative) from None

    def read_text(self, relative: str, encoding: str = "utf-8") -> str:
        """
        A text record's content.

        :raises FileNotFoundError: when it does not exist.
        :raises ArtifactCorruptError: naming the record, when it is not valid text in ``encoding``.
        """
        data = self.read_bytes(relative)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise self.corrupt(relative, f"is not valid {encoding} text ({exc})") from exc

    def read_json(self, relative: str) -> Any:
        """
        A JSON record.

        :raises FileNotFoundError: when it does not exist.
        :raises ArtifactCorruptError: naming the record and its recovery command, when it is not valid JSON.
        """
        data = self.read_bytes(relative)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self.corrupt(relative, f"is not valid JSON ({exc})") from exc

    def exists(self, relative: str) -> bool:
        """Whether the record exists."""
        return self.backend.exists(_key(relative))

    def is_folder(self, relative: str) -> bool:
        """Whether a folder is at this path (where a record may have been expected)."""
        key = _key(relative)
        parent, _, name = key.rpartition("/")
        return name in self.backend.folders(parent)

    def list(self, folder: str) -> builtins.list[str]:
        """Names of the ``.json`` records directly in ``folder``, sorted; an absent folder is empty."""
        return [name for name in self.list_all(folder) if name.endswith(".json")]

    def list_all(self, folder: str) -> builtins.list[str]:
        """Names of every record directly in ``folder`` (any suffix, ``.corrupt`` ones too), sorted."""
        return sorted(self.backend.files(_folder(folder)))

    def folders(self, folder: str) -> builtins.list[str]:
        """Names of the folders directly in ``folder`` (``""``: the root), sorted; an absent folder is empty."""
        return sorted(self.backend.folders(_folder(folder)))

    def url(self, relative: str) -> str:
        """Where the record is, for messages: ``file:///...`` or ``s3://bucket/...``."""
        return self.backend.url(_key(relative))

    def relative(self, location: str) -> str:
        """
        A record's path under the root, from that path or from its URL.

        :param location: ``incidents/<id>/incident.json``, or ``file:///...``/``s3://...`` under the root.
        :return: the path under the root.
        :raises ValueError: for a URL outside the root.
        """
        if "://" not in location:
            return location
        root = self.root.rstrip("/") + "/"
        if not location.startswith(root):
            raise ValueError(f"{location} is not under the artifacts root {self.root}: pass a path under it")
        return location[len(root) :]

    # -- recovery --------------------------------------------------------------------------------------------

    def corrupt(self, relative: str, problem: str, then: str | None = None) -> ArtifactCorruptError:
        """
        The error for an unreadable record: where it is, what is wrong, and the command that moves it aside.

        :param relative: the record's path under the root.
        :param problem: what is wrong, e.g. ``is not an incident (...)``.
        :param then: what to do after moving it aside, e.g. ``accept another version with `...```.
        """
        after = f", then {then}" if then else " to continue without it"
        return ArtifactCorruptError(
            f"{self.url(relative)} {problem}. Nothing was changed. Inspect it, then move it aside "
            f"(`airflow-selfheal artifacts quarantine {relative}`){after}."
        )

    def folder_in_place(self, relative: str) -> ArtifactCorruptError:
        """The error for a folder found where a record should be: no reader made it, so no command moves it."""
        return ArtifactCorruptError(
            f"{self.url(relative)} is a folder where a record should be. Nothing was changed. airflow-selfheal "
            "never makes one there: look inside, then move it out of the artifacts root to continue without it."
        )

    def quarantine(self, relative: str) -> str:
        """
        Move an unreadable record aside: to ``<name>.corrupt`` (or ``<name>.corrupt-2`` ... if taken).

        The new name is created exclusively, so an earlier quarantined copy is never overwritten.

        :param relative: the record's path under the root, or its URL (as an error message names it).
        :return: the new location's URL.
        :raises FileNotFoundError: when the record does not exist.
        :raises ValueError: when the path is a folder, or a URL outside the root.
        """
        relative = self.relative(relative)
        key = _key(relative)
        if not self.backend.exists(key):
            if self.is_folder(relative):
                raise ValueError(
                    f"{self.url(relative)} is a folder, not a record: quarantine the unreadable record in it, "
                    "by the path its error message names"
                )
            raise FileNotFoundError(
                f"{self.url(relative)} does not exist, so there is nothing to quarantine: pass the record's path "
                f"under the artifacts root {self.root}, as its error message names it"
            )
        data = self.backend.read(key)
        for number in range(1, MAX_QUARANTINE_NAMES + 1):
            target = f"{key}.corrupt" if number == 1 else f"{key}.corrupt-{number}"
            if self.backend.create(target, data):
                self.backend.delete(key)
                return self.backend.url(target)
        raise ArtifactStoreError(
            f"{self.url(relative)}: {MAX_QUARANTINE_NAMES} quarantined copies exist already; remove old ones"
        )

    # -- backward compatibility ------------------------------------------------------------------------------

    def path(self, relative: str) -> ObjectStoragePath:
        """
        The record's ``ObjectStoragePath``, for a local root only; kept for callers written before the methods.

        Writing through it bypasses exclusive create: use :meth:`create_bytes`, :meth:`read_bytes`,
        :meth:`list_all` and :meth:`folders` instead.

        :raises ArtifactStoreError: for an ``s3://`` root.
        """
        from airflow.sdk import ObjectStoragePath

        key = _key(relative) if relative.strip("/") else ""
        if not self.root.startswith("file://"):
            raise ArtifactStoreError(
                f"ArtifactStore.path() works for local roots only, not {self.root}; use the store's "
                "create_bytes/read_bytes/read_text/list_all/folders methods"
            )
        return ObjectStoragePath(self.backend.url(key))


def _key(relative: str) -> str:
    """Check a record path: slash-separated, no ``.`` or ``..`` segment, not empty."""
    if not isinstance(relative, str):
        raise TypeError(f"artifact path must be a string, got {type(relative).__name__}")
    parts = [part for part in relative.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise ValueError(
            f"artifact path {relative!r} must not contain '.' or '..': pass a path under the artifacts root, "
            "e.g. incidents/<incident id>/incident.json"
        )
    if not parts:
        raise ValueError(
            "artifact path must name a record under the root, got an empty path: pass e.g. "
            "incidents/<incident id>/incident.json"
        )
    return "/".join(parts)


def _folder(folder: str) -> str:
    """A folder path: like :func:`_key`, but ``""`` (the root) is allowed."""
    return _key(folder) if folder.strip("/") else ""


def _backend(url: str, conn_id: str | None) -> Backend:
    if "://" not in url:
        if not url:
            raise ArtifactStoreError("the artifacts root is empty; set [selfheal] artifacts_root")
        from airflow_selfheal.hooks.artifacts.local import LocalBackend

        return LocalBackend(Path(url))
    scheme = url.split("://", 1)[0].lower()
    if scheme == "file":
        from airflow_selfheal.hooks.artifacts.local import LocalBackend

        return LocalBackend(Path(url[len("file://") :] or "/"))
    if scheme == "s3":
        from airflow_selfheal.hooks.artifacts.s3 import S3Backend

        return S3Backend(url, conn_id)
    raise ArtifactStoreError(
        f"artifacts root {url!r}: {scheme}:// is not supported, because it offers no atomic exclusive create "
        "(two workers could both write a dedup marker). Set [selfheal] artifacts_root to a folder (local or "
        "NFS, plain or file://) or to s3://bucket/prefix (AWS S3 or a server with conditional writes)."
    )
