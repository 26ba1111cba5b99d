"""
Temporary worktrees: a detached checkout of one commit, outside the project, removed afterwards.

:func:`checkout_at` gives a task exactly the commit it must build (e.g.
:attr:`~airflow_selfheal.hooks.git.results.PromotionResult.deployed_sha`), whatever the worker's own checkout
holds: on another worker that checkout may still be on the old code, and its clone may not even have the commit
yet, so the commit is fetched from the remote when it is missing. The user's checked-out branch, index and
working tree are never touched. :func:`temporary_worktree` is the same lifecycle for
:class:`~airflow_selfheal.hooks.git.promotion.GitPromotionHook`, which commits and merges in one.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from airflow_selfheal.hooks.git.environment import NO_HOOKS, GitError, is_git_repo, output_of, run_git

if TYPE_CHECKING:
    import os
    import subprocess
    from collections.abc import Iterator

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120.0
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


class CommitNotFoundError(GitError):
    """
    The commit is neither in the repository nor (after a fetch) on its remote; nothing was checked out.

    :param message: the explanation, naming the commit, the repository and the remote.
    :param sha: the commit asked for.
    :param repo: the repository looked in.
    """

    def __init__(self, message: str, *, sha: str, repo: Path) -> None:
        super().__init__(message)
        self.sha = sha
        self.repo = repo


class GitRunner(Protocol):
    """How a worktree's owner runs git: ``git(cwd, *args, check=...)``."""

    def __call__(self, cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``git <args>`` in ``cwd``; raise a :class:`GitError` on failure when ``check``."""


@contextlib.contextmanager
def temporary_worktree(git: GitRunner, repo: Path, commit: str, *, prefix: str) -> Iterator[Path]:
    """
    A detached worktree of ``commit`` in a new temporary folder; removed, and its record pruned, on exit.

    Cleanup never hides the error that ended the body: a worktree git cannot remove is logged, and a leftover
    record is pruned by git later.

    :param git: runs git (the owner's timeout, hooks setting and error type).
    :param repo: a folder inside the repository.
    :param commit: the commit to check out.
    :param prefix: the temporary folder's name prefix.
    :return: a context manager yielding the worktree's root.
    """
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    worktree = parent / "worktree"
    try:
        git(repo, "worktree", "add", "--quiet", "--detach", str(worktree), commit)
        yield worktree
    finally:
        try:
            git(repo, "worktree", "remove", "--force", str(worktree), check=False)
        except GitError as exc:
            log.warning("Could not remove the temporary worktree %s: %s", worktree, exc)
        shutil.rmtree(parent, ignore_errors=True)
        with contextlib.suppress(GitError):
            git(repo, "worktree", "prune", check=False)


@contextlib.contextmanager
def checkout_at(
    repo_dir: str | os.PathLike[str],
    sha: str,
    *,
    remote: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[Path]:
    """
    Check out exactly ``sha`` in a temporary detached worktree; remove it (and prune its record) afterwards.

    The repository's hooks do not run (``post-checkout`` included): this is a read-only checkout.

    .. code-block:: python

        with checkout_at("/opt/dbt/shop", promotion.deployed_sha, remote="origin") as project:
            DbtProductionHook().build(project, select="stg_orders+", ...)
        # the worktree is gone here, whether the body returned or raised

    :param repo_dir: the dbt project directory: a git working tree or a folder inside one.
    :param sha: the full commit id (40 hex digits, or 64 in a SHA-256 repository).
    :param remote: fetched from when the repository does not have ``sha`` (another worker's clone may be
        behind): a remote's name or URL. None looks locally only.
    :param timeout: seconds allowed to each git command (the fetch included).
    :return: a context manager yielding the folder of the worktree that corresponds to ``repo_dir`` (its root,
        or the same subfolder when ``repo_dir`` is inside the repository).
    :raises ValueError: when ``sha`` is not a full commit id.
    :raises CommitNotFoundError: when the commit is not in the repository, even after fetching from ``remote``.
    :raises GitError: when ``repo_dir`` is not in a git working tree, or git fails or times out.
    """
    if not isinstance(sha, str) or not _FULL_SHA.fullmatch(sha.strip().lower()):
        raise ValueError(f"sha must be a full commit id (40 hex digits), got {sha!r}")
    commit = sha.strip().lower()
    repo = Path(repo_dir)
    if not is_git_repo(repo):
        raise GitError(f"{repo} is not inside a git working tree; cannot check out {commit} there")

    def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_git(cwd, *args, timeout=timeout, config=NO_HOOKS, check=check)

    _ensure_commit(git, repo, commit, remote)
    prefix = PurePosixPath(git(repo, "rev-parse", "--show-prefix").stdout.strip() or ".")
    with temporary_worktree(git, repo, commit, prefix="selfheal-checkout-") as worktree:
        log.info("Checked out %s of %s in %s", commit, repo, worktree)
        yield worktree.joinpath(*prefix.parts)


def _has_commit(git: GitRunner, repo: Path, commit: str) -> bool:
    found = git(repo, "cat-file", "-e", f"{commit}^{{commit}}", check=False)
    return found.returncode == 0


def _ensure_commit(git: GitRunner, repo: Path, commit: str, remote: str | None) -> None:
    """Fetch ``commit`` from ``remote`` unless the repository has it; raise when it cannot be had."""
    if _has_commit(git, repo, commit):
        return
    if remote is None:
        raise CommitNotFoundError(
            f"commit {commit} is not in the repository at {repo}, and no remote was given to fetch it from",
            sha=commit,
            repo=repo,
        )
    # By id first (servers allow wanting any reachable commit); else everything the remote's refspec fetches.
    fetched = git(repo, "fetch", "--quiet", "--no-tags", remote, commit, check=False)
    if fetched.returncode == 0 and _has_commit(git, repo, commit):
        log.info("Fetched %s from %s into %s", commit, remote, repo)
        return
    everything = git(repo, "fetch", "--quiet", "--no-tags", remote, check=False)
    if everything.returncode == 0 and _has_commit(git, repo, commit):
        log.info("Fetched %s from %s into %s", commit, remote, repo)
        return
    reason = output_of(everything) if everything.returncode != 0 else output_of(fetched)
    raise CommitNotFoundError(
        f"commit {commit} is not in the repository at {repo}, nor on {remote} after fetching ({reason}). "
        "Check that it was pushed, and that this worker fetches from the remote promotion pushes to.",
        sha=commit,
        repo=repo,
    )
