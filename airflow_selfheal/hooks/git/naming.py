"""The names promotion writes into git (the branch, the identity, the trailer), and the checks on its inputs."""

from __future__ import annotations

import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Literal

PromotionMode = Literal["merge", "branch_only"]
MODES: tuple[str, ...] = ("merge", "branch_only")
BRANCH_PREFIX = "selfheal/"
COMMITTER_NAME = "airflow-selfheal"
COMMITTER_EMAIL = "selfheal@localhost"
TRAILER = "Selfheal-Incident"

_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_AUTHOR = re.compile(r"(?P<name>[^<>\n]*[^<>\s][^<>\n]*?)\s*<(?P<email>[^<>\s]+)>")


def branch_name(incident_id: str) -> str:
    """
    The promotion branch of an incident.

    :param incident_id: letters, digits, ``_`` and ``-``, starting with a letter or digit (at most 128).
    :return: ``selfheal/<incident_id>``.
    """
    if not isinstance(incident_id, str) or not _INCIDENT_ID.fullmatch(incident_id):
        raise ValueError(
            f"incident id {incident_id!r} cannot name a git branch: use letters, digits, '_' and '-' "
            "(at most 128, starting with a letter or digit), e.g. 'inc-0123456789abcdef'"
        )
    return f"{BRANCH_PREFIX}{incident_id}"


def parse_author(author: str) -> tuple[str, str]:
    """
    Split a git identity.

    :param author: ``Name <email>``.
    :return: ``(name, email)``.
    """
    match = _AUTHOR.fullmatch(author.strip()) if isinstance(author, str) else None
    if match is None:
        raise ValueError(f"author {author!r} must look like 'Jane Doe <jane@example.com>'")
    return match.group("name").strip(), match.group("email")


def validate_relative_path(path: str) -> PurePosixPath:
    """
    Check that a file to commit stays inside the project.

    :param path: a slash-separated path relative to the project directory.
    :return: the normalised path.
    :raises ValueError: for an empty or absolute path, a ``..`` component, or a path inside ``.git``.
    """
    fix = "Give paths relative to the project directory, e.g. 'models/staging/stg_orders.sql'."
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ValueError(f"file path {path!r} is empty or not text. {fix}")
    if (
        PurePosixPath(path).is_absolute()
        or PureWindowsPath(path).is_absolute()
        or PureWindowsPath(path).drive
    ):
        raise ValueError(f"file path {path!r} is absolute, outside the repository. {fix}")
    parts = [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"file path {path!r} contains '..' and could leave the repository. {fix}")
    if not parts:
        raise ValueError(f"file path {path!r} names the project directory itself, not a file. {fix}")
    if any(part.lower() == ".git" for part in parts):
        raise ValueError(f"file path {path!r} is inside git's own '.git' folder. {fix}")
    return PurePosixPath(*parts)
