"""
Artifacts in a local (or NFS) folder.

A record is created whole or not at all: its bytes go to a hidden temporary file in the target's folder, which
is flushed to disk and then hard-linked to the record's name. ``link`` fails when the name exists, so the first
writer wins, and a reader can only ever open a complete record. The temporary file is removed either way.
"""

from __future__ import annotations

import errno
import os
import uuid
from typing import TYPE_CHECKING

from airflow_selfheal.hooks.artifacts.base import ArtifactStoreError

if TYPE_CHECKING:
    from pathlib import Path

_TEMP_SUFFIX = ".tmp"


class LocalBackend:
    """
    The artifacts under one folder.

    :param root: the folder (it is created when the first record is).
    """

    def __init__(self, root: Path) -> None:
        self.directory = root.absolute()
        self.root = f"file://{self.directory.as_posix()}"

    def _file(self, key: str) -> Path:
        return self.directory.joinpath(*key.split("/")) if key else self.directory

    def url(self, key: str) -> str:
        """``file://`` and the record's absolute path."""
        return f"file://{self._file(key).as_posix()}"

    def create(self, key: str, data: bytes) -> bool:
        """Write a temporary file, then hard-link it to the record's name; False when the name exists."""
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise ArtifactStoreError(
                        f"artifacts root {self.root}: this file system cannot hard-link files ({exc.strerror}), "
                        "which exclusive create needs so that a reader never sees half a record. Point "
                        "[selfheal] artifacts_root at a local or NFS folder, or at an s3:// bucket."
                    ) from exc
                raise
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def read(self, key: str) -> bytes:
        """The file's bytes."""
        path = self._file(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise FileNotFoundError(f"{self.url(key)} does not exist") from None

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._file(key).is_file()

    def files(self, folder: str) -> list[str]:
        """The files directly in the folder, leaving out hidden ones (temporary files are hidden)."""
        return [entry.name for entry in self._entries(folder) if entry.is_file()]

    def folders(self, folder: str) -> list[str]:
        """The folders directly in the folder, leaving out hidden ones."""
        return [entry.name for entry in self._entries(folder) if entry.is_dir()]

    def _entries(self, folder: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self._file(folder)) as entries:
                return [entry for entry in entries if not entry.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, key: str) -> None:
        """Remove the file."""
        self._file(key).unlink()
