"""
git for the repair loop: promote an approved fix, and check out exactly the commit production builds.

* :mod:`~airflow_selfheal.hooks.git.promotion` — :class:`GitPromotionHook`, commit on ``selfheal/<incident>`` and
  merge or push;
* :mod:`~airflow_selfheal.hooks.git.results` — :class:`PromotionResult` (with ``deployed_sha``) and the errors;
* :mod:`~airflow_selfheal.hooks.git.worktree` — :func:`checkout_at`, a temporary worktree of one commit;
* :mod:`~airflow_selfheal.hooks.git.naming` — the branch, the identity and the checks on promotion's inputs;
* :mod:`~airflow_selfheal.hooks.git.environment` — how git runs (no prompts, bounded), and the quick probes.
"""

from __future__ import annotations

from airflow_selfheal.hooks.git.environment import (
    PROBE_TIMEOUT,
    GitError,
    git_environment,
    head_sha,
    is_git_repo,
    run_git,
)
from airflow_selfheal.hooks.git.naming import (
    BRANCH_PREFIX,
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    MODES,
    TRAILER,
    PromotionMode,
    branch_name,
    parse_author,
    validate_relative_path,
)
from airflow_selfheal.hooks.git.promotion import GitPromotionHook
from airflow_selfheal.hooks.git.results import MergeConflictError, PromotionError, PromotionResult
from airflow_selfheal.hooks.git.worktree import CommitNotFoundError, checkout_at

__all__ = [
    "BRANCH_PREFIX",
    "COMMITTER_EMAIL",
    "COMMITTER_NAME",
    "MODES",
    "PROBE_TIMEOUT",
    "TRAILER",
    "CommitNotFoundError",
    "GitError",
    "GitPromotionHook",
    "MergeConflictError",
    "PromotionError",
    "PromotionMode",
    "PromotionResult",
    "branch_name",
    "checkout_at",
    "git_environment",
    "head_sha",
    "is_git_repo",
    "parse_author",
    "run_git",
    "validate_relative_path",
]
