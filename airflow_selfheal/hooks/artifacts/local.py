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
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}{_TEMP_SUFFIX}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except (FileExistsError, NotADirectoryError):
            raise self._not_a_folder(key) from None
        except PermissionError:
            raise self._denied(key, "written") from None
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
        """
        The file's bytes.

        :raises FileNotFoundError: when there is no file, :class:`IsADirectoryError` when a folder is in its place.
        :raises ArtifactStoreError: when it may not be read, or the root is not a folder.
        """
        path = self._file(key)
        try:
            return path.read_bytes()
        except IsADirectoryError:
            raise IsADirectoryError(f"{self.url(key)} is a folder, not a record") from None
        except NotADirectoryError:
            raise self._not_a_folder(key) from None
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.url(key)} does not exist") from None
        except PermissionError:
            raise self._denied(key, "read") from None

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
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            if not self._root_is_a_folder():
                raise self._not_a_folder(folder) from None
            return []
        except PermissionError:
            raise self._denied(folder, "listed") from None

    def _root_is_a_folder(self) -> bool:
        """Whether the root is a folder, or can become one (nothing on its path is a file)."""
        path = self.directory
        while not path.exists():
            path = path.parent
        return path.is_dir()

    def _not_a_folder(self, key: str) -> ArtifactStoreError:
        if not self._root_is_a_folder():
            return ArtifactStoreError(
                f"artifacts root {self.root} is not a folder (a file is in its place): point [selfheal] "
                "artifacts_root at a folder, or move that file away"
            )
        return ArtifactStoreError(
            f"artifacts root {self.root}: a file is in the way of {self.url(key)} (one of its folders is a file); "
            "move that file out of the artifacts root"
        )

    def _denied(self, key: str, action: str) -> ArtifactStoreError:
        return ArtifactStoreError(
            f"artifacts root {self.root}: {self.url(key)} cannot be {action} (permission denied). Fix: let the "
            "user running airflow-selfheal read and write the artifacts root (e.g. `chown -R` it to the Airflow "
            "workers' user), or run as that user"
        )

    def delete(self, key: str) -> None:
        """Remove the file."""
        self._file(key).unlink()
