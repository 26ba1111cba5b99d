"""
Running git for the package: an environment that cannot prompt or be redirected, bounded commands, quick probes.

Credentials are the worker's own git setup (credential helper, SSH key); prompts are disabled so a missing
credential fails fast instead of hanging the task. Git's own output is redacted before it reaches an error
message, since a remote URL may carry a token.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from airflow_selfheal.core.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

#: Seconds allowed to the quick probes :func:`is_git_repo` and :func:`head_sha`.
PROBE_TIMEOUT = 2.0
#: ``-c`` options that keep the repository's hooks from running (a read-only checkout runs none).
NO_HOOKS = ("-c", "core.hooksPath=/dev/null")
# Variables that would point git at another repository than the one we pass as the working directory; they are
# set, for instance, when the task itself runs inside a git hook.
_REPOSITORY_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR",
        "GIT_NAMESPACE",
        "GIT_PREFIX",
    }
)


class GitError(RuntimeError):
    """A git command failed, timed out or could not start; the message names the command and the folder."""


def git_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """
    The environment every git command runs with: no prompt, no pager, no editor, literal pathspecs.

    :param extra: variables to add, e.g. the author and committer identity.
    :return: a copy of ``os.environ`` without variables that would redirect git to another repository.
    """
    env = {key: value for key, value in os.environ.items() if key not in _REPOSITORY_ENV}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        PAGER="cat",
        GIT_EDITOR=":",
        GIT_MERGE_AUTOEDIT="no",
        GIT_LITERAL_PATHSPECS="1",
    )
    if "GIT_SSH_COMMAND" not in env and "GIT_SSH" not in env:
        # An unknown host key or a passphrase prompt would otherwise wait forever.
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes"
    env.update(extra or {})
    return env


def output_of(completed: subprocess.CompletedProcess[str]) -> str:
    """
    Git's message, on one line, redacted: a remote URL may carry a token.

    :param completed: a finished git command.
    :return: its stderr (else stdout), at most the last 2,000 characters.
    """
    text = (completed.stderr.strip() or completed.stdout.strip() or "no output").replace("\n", " | ")
    return redact(text[-2000:])


def run_git(
    cwd: Path,
    *args: str,
    timeout: float,
    config: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    check: bool = True,
    stdin: str | None = None,
    error: type[GitError] = GitError,
) -> subprocess.CompletedProcess[str]:
    """
    Run ``git <config> <args>`` in ``cwd`` with :func:`git_environment`.

    :param cwd: the working directory.
    :param args: the git command and its arguments.
    :param timeout: seconds before git is stopped.
    :param config: options before the command, e.g. :data:`NO_HOOKS`.
    :param env: variables added to the environment.
    :param check: raise when git exits non-zero.
    :param stdin: text for git's standard input.
    :param error: the exception raised (a :class:`GitError`).
    :return: the finished command, output as text.
    :raises GitError: (``error``) on timeout, when git is missing, or on a non-zero exit with ``check``.
    """
    shown = "git " + " ".join(args)
    try:
        completed = subprocess.run(
            ["git", *config, *args],
            cwd=cwd,
            env=git_environment(env),
            input=stdin,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise error(
            f"`{shown}` in {cwd} took longer than {timeout:g}s and was stopped. Check the network and "
            "the remote's credentials, or raise the hook's timeout."
        ) from exc
    except FileNotFoundError as exc:
        raise error("the `git` command is not installed on this worker") from exc
    if check and completed.returncode != 0:
        raise error(f"`{shown}` failed in {cwd} (exit {completed.returncode}): {output_of(completed)}")
    return completed


def _probe(path: str | os.PathLike[str], *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=path,
            env=git_environment(),
            check=False,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def is_git_repo(path: str | os.PathLike[str]) -> bool:
    """
    Whether ``path`` is inside a git working tree (a bare repository is not); gives up after 2 seconds.

    :param path: a directory.
    :return: True when ``git rev-parse --is-inside-work-tree`` says so.
    """
    return _probe(path, "rev-parse", "--is-inside-work-tree") == "true"


def head_sha(path: str | os.PathLike[str]) -> str | None:
    """
    The commit checked out at ``path``; gives up after 2 seconds.

    :param path: a directory inside a git working tree.
    :return: the full commit id, or None when ``path`` is not in a repository, has no commit yet, or git is
        missing or slow.
    """
    return _probe(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}") or None
