"""
Promote an approved fix with git: commit it on ``selfheal/<incident>``, then merge it or leave it for a PR.

Everything happens in a **temporary worktree** (``git worktree add --detach``) of the project's repository, made
outside the project directory and removed afterwards (:func:`~airflow_selfheal.hooks.git.worktree.temporary_worktree`).
The user's checked-out branch, index and uncommitted work are never touched, so a merge that conflicts is aborted
in a directory nobody else uses and cannot leave the project half-merged. A worktree (rather than index plumbing
with ``git merge-tree``) also lets the repository's own hooks run, pre-commit checks included, and works with any
git that has worktrees (2.32+ for ``--trailer``).

The deploy branch moves only once the merge commit exists, and only forward:

1. with a remote, the merge commit is pushed to the remote's deploy branch first (refused by the remote if the
   branch moved meanwhile), then the local deploy branch is fast-forwarded when it can be;
2. the local deploy branch is fast-forwarded with a compare-and-swap ``update-ref``, or, when it is checked out
   somewhere (typically the project directory Airflow runs dbt from), with ``git merge --ff-only`` in that
   checkout, which refuses rather than overwrite local changes.

Production then builds :attr:`~airflow_selfheal.hooks.git.results.PromotionResult.deployed_sha`. Credentials are
the worker's own git setup (:mod:`~airflow_selfheal.hooks.git.environment`).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from airflow.providers.common.compat.sdk import BaseHook

from airflow_selfheal.hooks.git.environment import NO_HOOKS, is_git_repo, output_of, run_git
from airflow_selfheal.hooks.git.naming import (
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    MODES,
    TRAILER,
    PromotionMode,
    branch_name,
    parse_author,
    validate_relative_path,
)
from airflow_selfheal.hooks.git.results import MergeConflictError, PromotionError, PromotionResult
from airflow_selfheal.hooks.git.worktree import temporary_worktree

if TYPE_CHECKING:
    import os
    import subprocess
    from collections.abc import Mapping


class GitPromotionHook(BaseHook):
    """
    Commit an approved fix on ``selfheal/<incident>`` and merge it into the deploy branch, or push it for a PR.

    There is no Airflow connection: git uses the worker's own credentials (credential helper, SSH key) and the
    repository's configured remotes, so no token travels through Airflow or ends up in a remote URL.

    .. code-block:: python

        result = GitPromotionHook().promote(
            Path("/opt/dbt/shop"),
            incident_id="inc-0123456789abcdef",
            files={"models/staging/stg_orders.sql": fixed_sql},
            message="selfheal: follow the upstream rename of ORDER_TS",
            author="Jane Doe <jane@example.com>",
        )
        result.merge_commit  # the --no-ff merge on main, already pushed to origin

    :param respect_hooks: run the repository's git hooks (pre-commit, commit-msg, post-merge ...) as a person
        committing would. False runs git with ``core.hooksPath=/dev/null``.
    :param timeout: seconds allowed to each git command (a fetch or push included).
    """

    hook_name = "Git promotion (selfheal)"

    def __init__(self, *, respect_hooks: bool = True, timeout: float = 120.0) -> None:
        super().__init__()
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.respect_hooks = respect_hooks
        self.timeout = timeout

    # -----------------------------------------------------------------------------------------------------------
    # Running git
    # -----------------------------------------------------------------------------------------------------------

    def _git(
        self,
        cwd: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_git(
            cwd,
            *args,
            timeout=self.timeout,
            config=() if self.respect_hooks else NO_HOOKS,
            env=env,
            check=check,
            stdin=stdin,
            error=PromotionError,
        )

    def _rev(self, cwd: Path, revision: str) -> str | None:
        completed = self._git(cwd, "rev-parse", "--verify", "--quiet", revision, check=False)
        if completed.returncode != 0:
            return None
        return completed.stdout.strip() or None

    def _is_ancestor(self, cwd: Path, ancestor: str, descendant: str) -> bool:
        return (
            self._git(cwd, "merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0
        )

    # -----------------------------------------------------------------------------------------------------------
    # Promotion
    # -----------------------------------------------------------------------------------------------------------

    def promote(
        self,
        repo_dir: str | os.PathLike[str],
        *,
        incident_id: str,
        files: Mapping[str, str],
        message: str,
        author: str,
        deploy_branch: str = "main",
        mode: PromotionMode = "merge",
        remote: str | None = "origin",
    ) -> PromotionResult:
        """
        Commit ``files`` on ``selfheal/<incident_id>`` and merge or push it.

        Re-running after a crash is safe: a branch that already holds the same files is reused, and a fix already
        merged is not merged twice.

        :param repo_dir: the dbt project directory: a git working tree or a folder inside one.
        :param incident_id: the incident; the branch is ``selfheal/<incident_id>``.
        :param files: new contents by path relative to ``repo_dir`` (slash-separated), written verbatim.
        :param message: the commit message; a ``Selfheal-Incident:`` trailer is added.
        :param author: the commit's author, ``Name <email>``, e.g. the approver. The committer is always
            ``airflow-selfheal <selfheal@localhost>``.
        :param deploy_branch: the branch production deploys from.
        :param mode: ``merge`` merges ``--no-ff`` into ``deploy_branch`` and pushes it; ``branch_only`` pushes
            the fix branch only, for a pull request.
        :param remote: the remote to fetch from and push to; None, or a name the repository does not have, works
            locally only.
        :return: what was done; see :class:`PromotionResult`.
        :raises ValueError: for a bad argument (path outside the project, malformed author, unknown mode).
        :raises MergeConflictError: when the deploy branch moved and the fix no longer merges; nothing changed.
        :raises PromotionError: when promotion was refused (uncommitted changes, a branch with other content) or
            git failed; the message says how to fix it.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        branch = branch_name(incident_id)
        author_name, author_email = parse_author(author)
        if not isinstance(message, str) or not message.strip():
            raise ValueError("the commit message must not be empty")
        if not files:
            raise ValueError("there are no files to promote")
        relative = {validate_relative_path(path): content for path, content in files.items()}
        for path, content in relative.items():
            if not isinstance(content, str):
                raise ValueError(f"the content of {path} must be text, got {type(content).__name__}")

        project = Path(repo_dir)
        if not is_git_repo(project):
            raise PromotionError(
                f"{project} is not inside a git working tree. Promotion commits the fix to the dbt project's "
                "repository: clone the project there, or use mode='branch_only' from a clone."
            )
        if self._git(project, "check-ref-format", "--branch", deploy_branch, check=False).returncode != 0:
            raise ValueError(f"deploy branch {deploy_branch!r} is not a valid git branch name")
        prefix = PurePosixPath(self._git(project, "rev-parse", "--show-prefix").stdout.strip() or ".")
        in_repo = {prefix.joinpath(path): content for path, content in relative.items()}
        self._refuse_uncommitted(project, [str(path) for path in relative])

        remote = self._resolve_remote(project, remote)
        if remote is not None:
            self._git(
                project,
                "fetch",
                "--quiet",
                "--no-tags",
                remote,
                f"+refs/heads/{deploy_branch}:refs/remotes/{remote}/{deploy_branch}",
            )
        base_ref = f"refs/remotes/{remote}/{deploy_branch}" if remote else f"refs/heads/{deploy_branch}"
        base = self._rev(project, f"{base_ref}^{{commit}}")
        if base is None:
            raise PromotionError(
                f"deploy branch {deploy_branch!r} does not exist in {project}"
                + (f" or on {remote}" if remote else "")
                + ". Set deploy_branch to the branch production deploys from."
            )

        identity = {
            "GIT_AUTHOR_NAME": author_name,
            "GIT_AUTHOR_EMAIL": author_email,
            "GIT_COMMITTER_NAME": COMMITTER_NAME,
            "GIT_COMMITTER_EMAIL": COMMITTER_EMAIL,
        }
        with temporary_worktree(self._git, project, base, prefix="selfheal-promote-") as worktree:
            commit, reused = self._fix_commit(
                project, worktree, branch, base, in_repo, message, incident_id, identity, remote
            )
            if mode == "branch_only":
                pushed = remote is not None and self._push(project, remote, branch, branch)
                self.log.info(
                    "Fix for %s is on branch %s (%s), ready for a pull request", incident_id, branch, commit
                )
                return PromotionResult(
                    branch=branch,
                    commit=commit,
                    deploy_branch=deploy_branch,
                    mode=mode,
                    merged=self._is_ancestor(project, commit, base),
                    merge_commit=None,
                    pushed=pushed,
                    local_deploy_updated=False,
                    reused_branch=reused,
                    pr_hint=branch,
                )
            merge_commit = self._merge(
                project, worktree, branch, commit, base, deploy_branch, incident_id, identity, remote
            )

        pushed = False
        if remote is not None:
            if merge_commit != base:
                self._push(project, remote, merge_commit, deploy_branch, moved_hint=True)
            pushed = True
        local_updated = self._advance_local(project, deploy_branch, merge_commit, required=remote is None)
        self.log.info(
            "Merged %s (%s) into %s as %s; pushed: %s", branch, commit, deploy_branch, merge_commit, pushed
        )
        return PromotionResult(
            branch=branch,
            commit=commit,
            deploy_branch=deploy_branch,
            mode=mode,
            merged=True,
            merge_commit=self._merge_of(project, commit, merge_commit)
            if merge_commit == base
            else merge_commit,
            pushed=pushed,
            local_deploy_updated=local_updated,
            reused_branch=reused,
        )

    def _refuse_uncommitted(self, project: Path, paths: list[str]) -> None:
        """Refuse when the user's working tree has staged, unstaged or untracked changes to any of ``paths``."""
        status = self._git(project, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", *paths)
        entries = status.stdout.split("\x00")
        dirty: list[str] = []
        index = 0
        while index < len(entries):
            entry = entries[index]
            index += 1
            if len(entry) < 4:
                continue
            dirty.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy is followed by its source path
                index += 1
        if dirty:
            raise PromotionError(
                f"uncommitted changes in {project} to {', '.join(sorted(dirty))}; promotion would overwrite "
                "them. Nothing was changed. Commit or discard those changes (`git status` shows them), then "
                "approve again."
            )

    def _resolve_remote(self, project: Path, remote: str | None) -> str | None:
        if remote is None:
            return None
        remotes = self._git(project, "remote").stdout.split()
        if remote not in remotes:
            self.log.warning(
                "Repository %s has no remote %r (it has: %s); promoting locally without pushing",
                project,
                remote,
                ", ".join(remotes) or "none",
            )
            return None
        return remote

    def _fix_commit(
        self,
        project: Path,
        worktree: Path,
        branch: str,
        base: str,
        files: Mapping[PurePosixPath, str],
        message: str,
        incident_id: str,
        identity: Mapping[str, str],
        remote: str | None,
    ) -> tuple[str, bool]:
        """Return the fix commit on ``branch`` and whether it came from an earlier attempt."""
        existing = self._existing_branch(project, branch, remote)
        if existing is not None:
            different = self._differences(worktree, existing, base, files)
            if different:
                raise PromotionError(
                    f"branch {branch} already exists with different content ({', '.join(different)}). "
                    f"Nothing was changed. If it is left over from an abandoned attempt, delete it "
                    f"(`git branch -D {branch}`"
                    + (f" and `git push {remote} --delete {branch}`" if remote else "")
                    + "), then approve again."
                )
            if self._rev(project, f"refs/heads/{branch}") is None:
                self._git(project, "update-ref", f"refs/heads/{branch}", existing, "")
            self.log.info("Reusing branch %s (%s) from an earlier attempt", branch, existing)
            return existing, True

        root = worktree.resolve()
        for path, content in files.items():
            target = worktree.joinpath(*path.parts)
            resolved = target.resolve()
            if not resolved.is_relative_to(root) or resolved == root:
                raise ValueError(
                    f"file path {path} leads outside the repository through a symbolic link (to {resolved}). "
                    "Write the file where the link points, inside the project, instead."
                )
            try:
                resolved.parent.mkdir(parents=True, exist_ok=True)
                resolved.write_text(content, encoding="utf-8", newline="")
            except OSError as exc:
                raise PromotionError(f"cannot write {path}: {exc}") from exc
        paths = [str(path) for path in files]
        self._git(worktree, "add", "--", *paths)
        if self._git(worktree, "diff", "--cached", "--quiet", check=False).returncode == 0:
            raise PromotionError(
                f"nothing to promote: {', '.join(paths)} already have this content on the deploy branch"
            )
        self._git(
            worktree,
            "commit",
            "--quiet",
            "-m",
            message,
            "--trailer",
            f"{TRAILER}: {incident_id}",
            env=identity,
        )
        commit = self._git(worktree, "rev-parse", "HEAD").stdout.strip()
        # An empty old value makes the update fail if another attempt created the branch meanwhile.
        created = self._git(project, "update-ref", f"refs/heads/{branch}", commit, "", check=False)
        if created.returncode != 0:
            raise PromotionError(
                f"branch {branch} was created by another promotion while this one ran; nothing was merged. "
                f"Approve again to reuse it. ({output_of(created)})"
            )
        return commit, False

    def _existing_branch(self, project: Path, branch: str, remote: str | None) -> str | None:
        local = self._rev(project, f"refs/heads/{branch}^{{commit}}")
        if local is not None or remote is None:
            return local
        # An attempt on another worker may have pushed the branch before it crashed.
        listed = self._git(project, "ls-remote", "--heads", remote, f"refs/heads/{branch}").stdout.strip()
        if not listed:
            return None
        tracking = f"refs/remotes/{remote}/{branch}"
        self._git(project, "fetch", "--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{tracking}")
        return self._rev(project, f"{tracking}^{{commit}}")

    def _differences(
        self, worktree: Path, existing: str, base: str, files: Mapping[PurePosixPath, str]
    ) -> list[str]:
        """Paths where ``existing`` differs from the requested fix (content, or files the fix does not touch)."""
        different: list[str] = []
        for path, content in files.items():
            # --path applies the repository's attributes (line endings, clean filters) as `git add` would.
            wanted = self._git(
                worktree, "hash-object", "--stdin", f"--path={path}", stdin=content
            ).stdout.strip()
            if self._rev(worktree, f"{existing}:{path}") != wanted:
                different.append(str(path))
        fork = self._git(worktree, "merge-base", base, existing, check=False).stdout.strip()
        if fork:
            changed = self._git(worktree, "diff", "--name-only", "--no-renames", fork, existing).stdout.split(
                "\n"
            )
            wanted_paths = {str(path) for path in files}
            different.extend(sorted(path for path in changed if path and path not in wanted_paths))
        return different

    def _merge(
        self,
        project: Path,
        worktree: Path,
        branch: str,
        commit: str,
        base: str,
        deploy_branch: str,
        incident_id: str,
        identity: Mapping[str, str],
        remote: str | None,
    ) -> str:
        """Merge the fix into ``base`` in the temporary worktree; return the merge commit (``base`` if merged)."""
        if self._is_ancestor(project, commit, base):
            self.log.info("%s is already merged into %s", branch, deploy_branch)
            return base
        self._git(worktree, "checkout", "--quiet", "--detach", base)
        merged = self._git(
            worktree,
            "merge",
            "--no-ff",
            "--no-edit",
            "-m",
            f"Merge {branch} into {deploy_branch}\n\n{TRAILER}: {incident_id}",
            commit,
            env=identity,
            check=False,
        )
        if merged.returncode == 0:
            return self._git(worktree, "rev-parse", "HEAD").stdout.strip()
        conflicted = self._git(worktree, "diff", "--name-only", "--diff-filter=U").stdout.split()
        self._git(worktree, "merge", "--abort", check=False)
        if not conflicted:
            raise PromotionError(
                f"merging {branch} into {deploy_branch} failed: {output_of(merged)}. Nothing was changed."
            )
        kept = f"Branch {branch} is kept"
        if remote is not None:
            try:
                self._push(project, remote, branch, branch)
                kept += f" and pushed to {remote}"
            except PromotionError as exc:
                self.log.warning("Could not push %s for a pull request: %s", branch, exc)
        raise MergeConflictError(
            f"{deploy_branch} changed since the fix was made and {branch} no longer merges: conflicts in "
            f"{', '.join(conflicted)}. The merge was aborted; {deploy_branch} and the working tree are unchanged. "
            f"{kept}: resolve it in a pull request, or reject this proposal and let the repair run again.",
            branch=branch,
            files=conflicted,
        )

    def _merge_of(self, project: Path, commit: str, tip: str) -> str | None:
        """The merge commit that brought ``commit`` into ``tip``, found after a re-run."""
        merges = self._git(
            project, "rev-list", "--merges", "--ancestry-path", "--reverse", f"{commit}..{tip}", check=False
        ).stdout.split()
        return merges[0] if merges else None

    def _push(
        self, project: Path, remote: str, source: str, branch: str, *, moved_hint: bool = False
    ) -> bool:
        pushed = self._git(
            project, "push", "--quiet", "--porcelain", remote, f"{source}:refs/heads/{branch}", check=False
        )
        if pushed.returncode != 0:
            hint = (
                f" {remote}'s {branch} moved while promoting; nothing was changed there. Approve again to merge "
                "onto the new tip."
                if moved_hint and "rejected" in pushed.stdout + pushed.stderr
                else ""
            )
            raise PromotionError(f"pushing {branch} to {remote} failed: {output_of(pushed)}.{hint}")
        return True

    def _advance_local(self, project: Path, deploy_branch: str, target: str, *, required: bool) -> bool:
        """Fast-forward the local deploy branch, and its checkout if any, to ``target``."""
        local = self._rev(project, f"refs/heads/{deploy_branch}")
        if local == target:
            return True
        if local is None or not self._is_ancestor(project, local, target):
            self.log.warning(
                "Local branch %s %s; it was left as it is",
                deploy_branch,
                "is missing" if local is None else "has diverged from the remote",
            )
            return False
        checkout = self._checkout_of(project, deploy_branch)
        if checkout is not None:
            advanced = self._git(checkout, "merge", "--ff-only", "--quiet", target, check=False)
            failure = f"fast-forwarding the checkout {checkout} failed: {output_of(advanced)}"
        else:
            advanced = self._git(
                project, "update-ref", f"refs/heads/{deploy_branch}", target, local, check=False
            )
            failure = f"{deploy_branch} moved while promoting: {output_of(advanced)}"
        if advanced.returncode == 0:
            return True
        if required:
            raise PromotionError(
                f"{failure}. {deploy_branch} was not changed; the fix stays on its branch. Commit or discard the "
                "local changes named above, then approve again."
            )
        self.log.warning("%s; run `git pull --ff-only` there to pick up the fix", failure)
        return False

    def _checkout_of(self, project: Path, branch: str) -> Path | None:
        listing = self._git(project, "worktree", "list", "--porcelain").stdout
        worktree: str | None = None
        for line in listing.splitlines():
            if line.startswith("worktree "):
                worktree = line.removeprefix("worktree ")
            elif line == f"branch refs/heads/{branch}" and worktree is not None:
                return Path(worktree)
        return None
