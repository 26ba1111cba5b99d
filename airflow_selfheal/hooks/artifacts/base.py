"""What every artifact store backend provides, and the errors the store raises."""

from __future__ import annotations

from typing import Protocol


class ArtifactStoreError(RuntimeError):
    """The artifacts root cannot be used (bad URL, connection or bucket); the message names the fix."""


class ArtifactCorruptError(RuntimeError):
    """A stored record is unreadable; the message names the file and how to recover."""


class Backend(Protocol):
    """
    Bytes under slash-separated keys, as the :class:`~airflow_selfheal.hooks.artifacts.ArtifactStore` uses them.

    Keys are checked by the store before they reach a backend: non-empty segments, none ``.`` or ``..``.
    """

    #: The root's URL, for messages: ``file:///...`` or ``s3://bucket/prefix``.
    root: str

    def url(self, key: str) -> str:
        """The URL of ``key``, for messages."""

    def create(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if nothing is there; whether this call stored it. All or nothing."""

    def read(self, key: str) -> bytes:
        """The bytes under ``key``; :class:`FileNotFoundError` when there are none."""

    def exists(self, key: str) -> bool:
        """Whether something is stored under ``key``."""

    def files(self, folder: str) -> list[str]:
        """Names of what is stored directly under ``folder`` (``""``: the root), in no particular order."""

    def folders(self, folder: str) -> list[str]:
        """Names of the folders directly under ``folder``, in no particular order."""

    def delete(self, key: str) -> None:
        """Remove ``key``; only :meth:`ArtifactStore.quarantine` does."""
