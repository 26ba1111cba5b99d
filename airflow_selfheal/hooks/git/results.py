"""What a promotion did, and how it can fail."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from airflow_selfheal.hooks.git.environment import GitError

if TYPE_CHECKING:
    from collections.abc import Sequence


class PromotionError(GitError):
    """Promotion did not happen; the message names what was refused or failed and how to fix it."""


class MergeConflictError(PromotionError):
    """
    The deploy branch moved and the fix no longer merges cleanly. The merge was aborted; nothing changed.

    :param message: the explanation, naming the files and the branch kept for a pull request.
    :param branch: the ``selfheal/<incident>`` branch, kept (and pushed when there is a remote).
    :param files: the conflicting paths, relative to the repository root.
    """

    def __init__(self, message: str, *, branch: str, files: Sequence[str]) -> None:
        super().__init__(message)
        self.branch = branch
        self.files = list(files)


@dataclass(frozen=True)
class PromotionResult:
    """
    What :meth:`~airflow_selfheal.hooks.git.promotion.GitPromotionHook.promote` did.

    :param branch: ``selfheal/<incident>``.
    :param commit: the fix commit on that branch.
    :param deploy_branch: the branch the fix was (or is to be) merged into.
    :param mode: ``merge`` or ``branch_only``.
    :param merged: whether the deploy branch contains the fix.
    :param merge_commit: the ``--no-ff`` merge commit, when merged.
    :param pushed: whether the remote has the result (the deploy branch in ``merge`` mode, the fix branch in
        ``branch_only`` mode); False without a remote.
    :param local_deploy_updated: whether the local deploy branch (and its checkout, if any) now contains the fix.
        With a remote, a local deploy branch that has diverged from the remote is left alone and this is False.
    :param reused_branch: whether the branch existed from an earlier attempt with the same content.
    :param pr_hint: the branch to open a pull request from, in ``branch_only`` mode.
    """

    branch: str
    commit: str
    deploy_branch: str
    mode: str
    merged: bool
    merge_commit: str | None
    pushed: bool
    local_deploy_updated: bool
    reused_branch: bool
    pr_hint: str | None = None

    @property
    def deployed_sha(self) -> str:
        """
        The commit production should now build: the merge commit when merged, else the fix commit.

        Build exactly this commit (e.g. in :func:`~airflow_selfheal.hooks.git.worktree.checkout_at`), not the tip
        of the deploy branch, which may have moved since.
        """
        return self.merge_commit if self.merged and self.merge_commit else self.commit

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of the fields, for XCom and the audit trail (``deployed_sha`` is not a field)."""
        return asdict(self)
