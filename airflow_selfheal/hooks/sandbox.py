"""
A private copy of the dbt project for one incident: every edit happens here, never in the live project.

:meth:`Sandbox.create` copies the project to ``<root>/.selfheal/runs/<incident>/project`` and leaves the live
project untouched (it is only ever read). The copy skips what dbt regenerates or what is not project code
(``target/``, ``logs/``, ``dbt_packages/`` at the top, ``.git/`` anywhere) and the top-level ``profiles.yml`` and
``.user.yml``, which may hold credentials and are never needed: validation writes its own profile. A symlink is
kept only if it resolves inside the project, and is re-created relative to the copy, so nothing in the sandbox
leads back to the live project or elsewhere.

Writes go through :meth:`Sandbox.write_files`, which takes project-relative POSIX paths only (no ``..``, no
absolute path, no symlink on the way), never a path the hard floor refuses (a ``.git`` folder at any depth;
``dbt_project.yml``, ``profiles.yml``, ``packages.yml`` and anything outside ``models/``, ``tests/``,
``snapshots/`` and ``seeds/`` unless named exactly, see :func:`~airflow_selfheal.core.rules.floor_refusal`),
and only paths matching the allow-list globs (the rules file's ``allowed_paths``, same syntax as
:func:`~airflow_selfheal.core.rules.glob_regex`; an empty list allows nothing). All paths are checked before
any file is written.

The sandbox records its evidence as it goes: the files read (:attr:`Sandbox.inspected`), the files changed,
the diff against the live project, probe and data-diff JSON (:meth:`Sandbox.record_evidence`) and, from
:class:`~airflow_selfheal.hooks.dbt.DbtValidationHook`, one folder per validation attempt.
:meth:`Sandbox.publish` copies that evidence to the shared artifacts root, because the next task of the repair
DAG may run on another worker. :meth:`Sandbox.files_hash` identifies the changed files' contents: a validation
that ran on another hash is stale and must run again.

.. code-block:: python

    sandbox = Sandbox.create(Path("/srv/dbt/shop"), incident.incident_id)
    sql = sandbox.read("models/staging/stg_orders.sql")
    sandbox.write_files({"models/staging/stg_orders.sql": fixed}, allowed_paths=rules.allowed_paths)
    print(sandbox.diff())
    paths = sandbox.publish(ArtifactStore(), f"incidents/{incident.incident_id}/proposal/{sandbox.files_hash()[:12]}")
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.guards import UnsafePathError, check_relative_path
from airflow_selfheal.core.rules import path_refusal

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from airflow_selfheal.hooks.artifacts import ArtifactStore

#: Where sandboxes live, under the root given to :meth:`Sandbox.create` (default: the working directory).
RUNS_DIR = PurePosixPath(".selfheal/runs")
PROJECT_DIR = "project"
STATE_FILE = "sandbox.json"
EVIDENCE_DIR = "evidence"
VALIDATION_DIR = "validation"
#: Top-level entries of the project that are never copied: dbt output, installed packages, credentials.
EXCLUDED_TOP_LEVEL = frozenset({"target", "logs", "dbt_packages", "profiles.yml", ".user.yml"})
#: Directory names never copied at any depth.
EXCLUDED_ANYWHERE = frozenset({".git"})
_INCIDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_EVIDENCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_STATE_VERSION = 1


class SandboxError(ValueError):
    """A sandbox operation was refused or the sandbox is unusable; the message names the path and the reason."""


def _check_path(path: str) -> None:
    try:
        check_relative_path(path)
    except UnsafePathError as exc:
        raise SandboxError(str(exc)) from None


def _inside(path: str | Path, root: Path) -> bool:
    resolved = Path(os.path.realpath(path))
    return resolved == root or resolved.is_relative_to(root)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _diff_lines(lines: Iterable[str]) -> list[str]:
    """Mark a last line without a newline as ``git diff`` does, so the patch stays applicable."""
    out = []
    for line in lines:
        out.append(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n")
    return out


class Sandbox:
    """
    A copy of a dbt project under ``.selfheal/runs/<incident>/project`` where a fix is written and validated.

    Use :meth:`create` for a new sandbox and :meth:`open` for an existing one (e.g. in a later task on the same
    worker). The state (files written, files inspected) is kept in ``<run>/sandbox.json`` beside the copy.

    .. code-block:: python

        sandbox = Sandbox.create(project_dir, "inc-0123abcd")
        sandbox.write_files({"models/staging/stg_orders.sql": sql}, allowed_paths=["models/**"])
        assert sandbox.changed_files == ["models/staging/stg_orders.sql"]

    :param run_dir: ``<root>/.selfheal/runs/<incident>``.
    :param live_project: the live project the copy was made from (only ever read).
    :param incident_id: the incident.
    :param written: project-relative paths written so far.
    :param inspected: project-relative paths read so far.
    """

    def __init__(
        self,
        run_dir: Path,
        live_project: Path,
        incident_id: str,
        written: Iterable[str] = (),
        inspected: Iterable[str] = (),
    ) -> None:
        self.run_dir = run_dir
        self.live_project = live_project
        self.incident_id = incident_id
        self._written = set(written)
        self._inspected = set(inspected)

    # -----------------------------------------------------------------------------------------------------------
    # Create and open
    # -----------------------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, project_dir: Path, incident_id: str, root: Path | None = None, *, replace: bool = False
    ) -> Sandbox:
        """
        Copy the dbt project at ``project_dir`` into a new sandbox for ``incident_id``.

        :param project_dir: the live dbt project (holding ``dbt_project.yml``); it is only read.
        :param incident_id: the incident; letters, digits, ``.``, ``_`` and ``-``.
        :param root: the folder holding ``.selfheal/runs``; default the current working directory.
        :param replace: replace an existing sandbox for the incident (a retried task) instead of refusing.
        :return: the sandbox.
        :raises SandboxError: on a bad incident id, a folder that is not a dbt project, an existing sandbox
            (unless ``replace``) or a symlink that leads outside the project (nothing is left behind).
        """
        if not isinstance(incident_id, str) or not _INCIDENT_ID.match(incident_id) or ".." in incident_id:
            raise SandboxError(
                f"incident id {incident_id!r} must be 1-128 letters, digits, '.', '_' or '-', without '..'"
            )
        live = Path(project_dir).resolve()
        if not (live / "dbt_project.yml").is_file():
            raise SandboxError(f"{live} is not a dbt project: it has no dbt_project.yml")
        run_dir = (Path(root) if root is not None else Path.cwd()).resolve() / RUNS_DIR / incident_id
        target = run_dir / PROJECT_DIR
        if target.exists() or target.is_symlink():
            if not replace:
                raise SandboxError(
                    f"a sandbox for incident {incident_id!r} already exists at {target}; "
                    "open it with Sandbox.open() or pass replace=True"
                )
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{PROJECT_DIR}-", dir=run_dir))
        try:
            _copy_project(live, staging, skip=run_dir.parent)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(run_dir, ignore_errors=True)
            raise
        sandbox = cls(run_dir, live, incident_id)
        sandbox._save(created_at=datetime.now(timezone.utc).isoformat())
        return sandbox

    @classmethod
    def open(cls, project_dir: Path) -> Sandbox:
        """
        Open the sandbox whose project copy is ``project_dir`` (the :attr:`project_dir` of a created sandbox).

        :param project_dir: ``<root>/.selfheal/runs/<incident>/project``.
        :return: the sandbox with its recorded state.
        :raises SandboxError: if ``project_dir`` is not a sandbox's project copy.
        """
        project = Path(project_dir).resolve()
        state_file = project.parent / STATE_FILE
        if project.name != PROJECT_DIR or not state_file.is_file():
            raise SandboxError(
                f"{project} is not a sandbox project copy (no {STATE_FILE} beside it); "
                "create one with Sandbox.create()"
            )
        try:
            state = json.loads(state_file.read_text())
            sandbox = cls(
                project.parent,
                Path(state["live_project"]),
                str(state["incident_id"]),
                written=state["written"],
                inspected=state["inspected"],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SandboxError(f"{state_file} is unreadable ({exc}); recreate the sandbox") from exc
        if project == sandbox.live_project.resolve():
            raise SandboxError(f"{project} is the live project, not a sandbox")
        return sandbox

    def _save(self, **extra: Any) -> None:
        state_file = self.run_dir / STATE_FILE
        state: dict[str, Any] = {}
        if state_file.is_file():
            state = json.loads(state_file.read_text())
        state.update(
            {
                "version": _STATE_VERSION,
                "incident_id": self.incident_id,
                "live_project": str(self.live_project),
                "written": sorted(self._written),
                "inspected": sorted(self._inspected),
                **extra,
            }
        )
        partial = state_file.with_name(f".{STATE_FILE}.tmp")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(partial, state_file)

    # -----------------------------------------------------------------------------------------------------------
    # Files
    # -----------------------------------------------------------------------------------------------------------

    @property
    def project_dir(self) -> Path:
        """The project copy, ``<run>/project``."""
        return self.run_dir / PROJECT_DIR

    def read(self, path: str) -> str:
        """
        Read a project file from the sandbox and record it in :attr:`inspected`.

        :param path: project-relative POSIX path.
        :return: the file's text.
        :raises SandboxError: on a bad path or one that resolves outside the sandbox.
        :raises FileNotFoundError: if the file does not exist in the sandbox.
        """
        _check_path(path)
        location = self.project_dir / path
        if not _inside(location, self.project_dir.resolve()):
            raise SandboxError(f"path {path!r} resolves outside the sandbox")
        text = location.read_text(encoding="utf-8")
        if path not in self._inspected:
            self._inspected.add(path)
            self._save()
        return text

    def write_files(self, changes: Mapping[str, str], allowed_paths: Sequence[str]) -> list[str]:
        """
        Write complete new files into the sandbox; all paths are checked before anything is written.

        :param changes: project-relative POSIX path to the file's full new text.
        :param allowed_paths: globs a path must match, e.g. the rules file's ``allowed_paths``; empty allows
            nothing.
        :return: the paths written, sorted.
        :raises SandboxError: naming the first refused path: not relative, ``..``, refused by the hard floor,
            outside the globs, through a symlink, onto a directory, or a non-text value. Nothing is written then.
        """
        if isinstance(allowed_paths, str):
            raise SandboxError("allowed_paths must be a list of globs, not one string")
        patterns = list(allowed_paths)
        root = self.project_dir.resolve()
        for path, text in changes.items():
            _check_path(path)
            if not isinstance(text, str):
                raise SandboxError(f"the new content of {path!r} must be text, got {type(text).__name__}")
            refused = path_refusal(path, patterns)
            if refused is not None:
                raise SandboxError(refused)
            location = root / path
            # No symlink anywhere on the way: a write must land at exactly this path inside the copy.
            if os.path.realpath(location) != str(location):
                raise SandboxError(f"path {path!r} goes through a symlink; refusing to write through it")
            if location.is_dir():
                raise SandboxError(f"path {path!r} is a directory")
            for parent in PurePosixPath(path).parents:
                if parent.as_posix() in changes or (root / parent).is_file():
                    raise SandboxError(
                        f"path {path!r} needs the folder {parent.as_posix()!r}, which is a file"
                    )
        for path, text in sorted(changes.items()):
            location = root / path
            location.parent.mkdir(parents=True, exist_ok=True)
            location.write_bytes(text.encode("utf-8"))
            self._written.add(path)
        self._save()
        return sorted(changes)

    @property
    def inspected(self) -> frozenset[str]:
        """The project-relative paths read through :meth:`read`."""
        return frozenset(self._inspected)

    def _live_bytes(self, path: str) -> bytes | None:
        location = self.live_project / path
        return location.read_bytes() if location.is_file() else None

    @property
    def changed_files(self) -> list[str]:
        """Written paths whose content differs from the live project (or that it lacks), sorted."""
        changed = []
        for path in sorted(self._written):
            if (self.project_dir / path).read_bytes() != self._live_bytes(path):
                changed.append(path)
        return changed

    def diff(self) -> str:
        """
        A unified diff (``git apply``-able) of the changed files against the live project.

        :return: ``--- a/<path>`` / ``+++ b/<path>`` sections in path order (``--- /dev/null`` for a new file);
            empty when nothing changed.
        """
        sections: list[str] = []
        for path in self.changed_files:
            live = self._live_bytes(path)
            before = [] if live is None else live.decode("utf-8").splitlines(keepends=True)
            after = (self.project_dir / path).read_text(encoding="utf-8").splitlines(keepends=True)
            sections.extend(
                difflib.unified_diff(
                    _diff_lines(before),
                    _diff_lines(after),
                    fromfile="/dev/null" if live is None else f"a/{path}",
                    tofile=f"b/{path}",
                )
            )
        return "".join(sections)

    def files_hash(self) -> str:
        """
        sha256 of the changed files' paths and contents; a validation made on another hash is stale.

        :return: 64 hex digits (the hash of nothing when no file changed).
        """
        digest = hashlib.sha256()
        for path in self.changed_files:
            content = (self.project_dir / path).read_bytes()
            digest.update(f"{path}\x00{len(content)}\x00".encode())
            digest.update(content)
        return digest.hexdigest()

    # -----------------------------------------------------------------------------------------------------------
    # Evidence
    # -----------------------------------------------------------------------------------------------------------

    def record_evidence(self, name: str, data: Any) -> Path:
        """
        Save one piece of evidence (e.g. ``probes``, ``data_diff``) as ``<run>/evidence/<name>.json``.

        :param name: lower-case letters, digits, ``_`` and ``-``.
        :param data: JSON-serialisable data (other values are written with ``str``).
        :return: the file written (replacing an earlier one of the same name).
        :raises SandboxError: on a bad name.
        """
        if not isinstance(name, str) or not _EVIDENCE_NAME.match(name):
            raise SandboxError(f"evidence name {name!r} must be lower-case letters, digits, '_' or '-'")
        folder = self.run_dir / EVIDENCE_DIR
        folder.mkdir(exist_ok=True)
        location = folder / f"{name}.json"
        location.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
        return location

    def new_validation_dir(self) -> Path:
        """
        Create the folder for the next validation attempt, ``<run>/validation/attempt-<n>``.

        :return: the new, empty folder.
        """
        parent = self.run_dir / VALIDATION_DIR
        parent.mkdir(exist_ok=True)
        number = 1 + sum(1 for child in parent.iterdir() if child.name.startswith("attempt-"))
        while True:
            folder = parent / f"attempt-{number}"
            try:
                folder.mkdir()
            except FileExistsError:
                number += 1
                continue
            return folder

    def validation_dirs(self) -> list[Path]:
        """The validation attempt folders, oldest first."""
        parent = self.run_dir / VALIDATION_DIR
        if not parent.is_dir():
            return []
        folders = [
            child for child in parent.iterdir() if child.is_dir() and child.name.startswith("attempt-")
        ]
        return sorted(folders, key=lambda folder: int(folder.name.split("-", 1)[1]))

    def publish(self, store: ArtifactStore, prefix: str) -> list[str]:
        """
        Copy the evidence to the shared artifacts root so later tasks on other workers can read it.

        Written under ``prefix``: ``diff.patch``, ``files/<path>`` for every changed file,
        ``evidence/<name>.json``, ``validation/attempt-<n>/<file>`` (each attempt's result, log and
        ``run_results.json``) and, last, ``sandbox.json``, the index (changed files with their sha256, inspected
        files, :meth:`files_hash`). Publishing the same evidence again is a no-op; different content under an
        existing name is refused, so use one prefix per proposal version (e.g. with the files hash in it).

        :param store: the artifacts store.
        :param prefix: slash-separated folder under the store's root.
        :return: the paths written, relative to the store's root, sorted.
        :raises FileExistsError: if a file of the same name but other content is already published.
        """
        prefix = prefix.strip("/")
        uploads: dict[str, bytes] = {"diff.patch": self.diff().encode("utf-8")}
        changed = self.changed_files
        for path in changed:
            uploads[f"files/{path}"] = (self.project_dir / path).read_bytes()
        evidence = self.run_dir / EVIDENCE_DIR
        if evidence.is_dir():
            for item in sorted(evidence.glob("*.json")):
                uploads[f"{EVIDENCE_DIR}/{item.name}"] = item.read_bytes()
        attempts = []
        for folder in self.validation_dirs():
            attempts.append(folder.name)
            for item in sorted(folder.iterdir()):
                if item.is_file() and not item.is_symlink() and not item.name.startswith("."):
                    uploads[f"{VALIDATION_DIR}/{folder.name}/{item.name}"] = item.read_bytes()
        index = {
            "incident_id": self.incident_id,
            "changed_files": {path: _sha256(uploads[f"files/{path}"]) for path in changed},
            "inspected": sorted(self._inspected),
            "files_hash": self.files_hash(),
            "validation_attempts": attempts,
            "files": sorted(uploads),
        }
        uploads["sandbox.json"] = json.dumps(index, indent=2, sort_keys=True).encode()
        written = []
        for relative, payload in uploads.items():  # the index was added last, so it is written last
            name = f"{prefix}/{relative}" if prefix else relative
            _put(store, name, payload)
            written.append(name)
        return sorted(written)


def _put(store: ArtifactStore, relative: str, payload: bytes) -> None:
    """Create ``relative`` with ``payload`` unless the same bytes are already there; different bytes are refused."""
    if store.create_bytes(relative, payload) or store.read_bytes(relative) == payload:
        return
    raise FileExistsError(
        f"{store.url(relative)} is already published with other content; publish under a new prefix"
    )


def _copy_project(source: Path, dest: Path, skip: Path) -> None:
    """Copy ``source`` (resolved) into the existing folder ``dest``; see the module docstring for what is left out."""
    for current, dirnames, filenames in os.walk(source):
        here = Path(current)
        relative = here.relative_to(source)
        top = relative == Path(".")
        kept = []
        for name in sorted(dirnames):
            full = here / name
            if name in EXCLUDED_ANYWHERE or (top and name in EXCLUDED_TOP_LEVEL):
                continue
            if full == skip or (relative / name).as_posix() == RUNS_DIR.as_posix():
                continue
            if full.is_symlink():
                _copy_symlink(full, source, dest)
                continue
            (dest / relative / name).mkdir()
            kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            full = here / name
            if top and name in EXCLUDED_TOP_LEVEL:
                continue
            if full.is_symlink():
                _copy_symlink(full, source, dest)
            elif full.is_file():
                shutil.copy2(full, dest / relative / name)


def _copy_symlink(link: Path, source: Path, dest: Path) -> None:
    """Re-create a link that resolves inside the project as a relative link inside the copy; refuse others."""
    resolved = Path(os.path.realpath(link))
    relative = link.relative_to(source)
    if not (resolved == source or resolved.is_relative_to(source)):
        raise SandboxError(
            f"{relative.as_posix()} is a symlink to {resolved}, outside the project; refusing to copy it"
        )
    copy = dest / relative
    copy.symlink_to(os.path.relpath(dest / resolved.relative_to(source), copy.parent))
