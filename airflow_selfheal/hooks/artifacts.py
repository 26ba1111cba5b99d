"""JSON artifacts under the configured artifacts root, shared by every worker.

Writes never overwrite: records are either created exclusively (first writer wins, which is how dedup
markers work) or written under a new unique name (how histories grow). A record that cannot be read is
reported with its path and a recovery command; it is never silently replaced.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow_selfheal.config import get_settings

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


class ArtifactCorruptError(RuntimeError):
    """A stored record is unreadable; the message names the file and how to recover."""


class ArtifactStore:
    """
    A folder of JSON records on an ``ObjectStoragePath`` (local folder, ``s3://``, ``gs://`` ...).

    .. code-block:: python

        store = ArtifactStore()  # the [selfheal] artifacts_root
        created = store.create_json("notifications/drift-abc.json", {"sent": True})

    :param root: URL of the root; defaults to ``[selfheal] artifacts_root``.
    :param conn_id: Airflow connection for the object store; defaults to ``[selfheal] artifacts_conn_id``.
    """

    def __init__(self, root: str | None = None, conn_id: str | None = None) -> None:
        from airflow.sdk import ObjectStoragePath

        settings = get_settings() if root is None or conn_id is None else None
        url = root or (settings.artifacts_root if settings else "")
        if "://" not in url:
            url = f"file://{url}"
        self.root: ObjectStoragePath = ObjectStoragePath(
            url, conn_id=conn_id or (settings.artifacts_conn_id if settings else None)
        )

    def path(self, relative: str) -> ObjectStoragePath:
        """The record at ``relative`` (slash-separated) under the root; ``..`` is refused."""
        parts = [part for part in relative.split("/") if part]
        if any(part in (".", "..") for part in parts):
            raise ValueError(f"artifact path {relative!r} must not contain '.' or '..'")
        return self.root.joinpath(*parts)

    def create_json(self, relative: str, data: Any) -> bool:
        """Create the record only if it does not exist yet; return whether this call created it."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
        try:
            with target.open("xb") as handle:  # type: ignore[no-untyped-call]
                handle.write(payload)
        except FileExistsError:
            return False
        return True

    def read_json(self, relative: str) -> Any:
        """Read a record; raise :class:`ArtifactCorruptError` naming the file if it is not valid JSON."""
        target = self.path(relative)
        try:
            return json.loads(target.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactCorruptError(
                f"{target} is not valid JSON ({exc}). Nothing was changed. Inspect it, then move it aside "
                f"(`airflow-selfheal artifacts quarantine {relative}`) to continue without it."
            ) from exc

    def exists(self, relative: str) -> bool:
        """Whether the record exists."""
        return bool(self.path(relative).exists())

    def list(self, folder: str) -> list[str]:
        """Names of the records in ``folder``, sorted; an absent folder is empty."""
        directory = self.path(folder)
        if not directory.exists():
            return []
        return sorted(child.name for child in directory.iterdir() if child.name.endswith(".json"))

    def quarantine(self, relative: str) -> str:
        """Move an unreadable record aside (``<name>.corrupt``) and return its new path."""
        source = self.path(relative)
        target = source.parent / f"{source.name}.corrupt"
        target.write_bytes(source.read_bytes())
        source.unlink()
        return str(target)
