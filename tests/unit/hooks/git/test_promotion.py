"""GitPromotionHook against real git: a bare "origin" repository and a clone of it as the dbt project."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.hooks.git import (
    COMMITTER_EMAIL,
    GitPromotionHook,
    MergeConflictError,
    PromotionError,
    branch_name,
    head_sha,
    is_git_repo,
)

if TYPE_CHECKING:
    from pathlib import Path

ORIGINAL = "select order_ts from {{ source('shop', 'orders') }}\n"
FIXED = "select order_timestamp as order_ts from {{ source('shop', 'orders') }}\n"
INCIDENT = "inc-0123456789abcdef"
BRANCH = f"selfheal/{INCIDENT}"
APPROVER = "Jane Doe <jane@example.com>"
# Identity for the test's own setup commits only; the hook must never need one from git config (conftest.py
# hides the worker's own).
SETUP_IDENTITY = ("-c", "user.name=Test Setup", "-c", "user.email=setup@example.com")


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *SETUP_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30
    )
    return completed.stdout.strip()


def commit_file(repo: Path, path: str, content: str, message: str) -> str:
    (repo / path).parent.mkdir(parents=True, exist_ok=True)
    (repo / path).write_text(content)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_file(seed, "models/stg_orders.sql", ORIGINAL, "initial")
    commit_file(seed, "models/other.sql", "select 1\n", "other model")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


@pytest.fixture
def project(tmp_path: Path, origin: Path) -> Path:
    clone = tmp_path / "project"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


@pytest.fixture
def hook() -> GitPromotionHook:
    return GitPromotionHook(timeout=30)


def promote(hook: GitPromotionHook, repo: Path, **overrides):
    arguments = {
        "incident_id": INCIDENT,
        "files": {"models/stg_orders.sql": FIXED},
        "message": "selfheal: follow the rename of ORDER_TS",
        "author": APPROVER,
    }
    arguments.update(overrides)
    return hook.promote(repo, **arguments)


def push_from_colleague(tmp_path: Path, origin: Path, path: str, content: str) -> str:
    colleague = tmp_path / "colleague"
    git(tmp_path, "clone", "-q", str(origin), str(colleague))
    sha = commit_file(colleague, path, content, "colleague's change")
    git(colleague, "push", "-q", "origin", "main")
    return sha


def worktrees(repo: Path) -> list[str]:
    return [
        line
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


class TestMergeMode:
    def test_merges_no_ff_and_pushes(self, hook: GitPromotionHook, project: Path, origin: Path) -> None:
        before = git(origin, "rev-parse", "main")

        result = promote(hook, project)

        assert result.merged is True
        assert result.pushed is True
        assert result.local_deploy_updated is True
        assert result.branch == BRANCH
        # The remote's main is the merge commit, whose parents are the old tip and the fix.
        assert git(origin, "rev-parse", "main") == result.merge_commit
        assert git(origin, "log", "-1", "--format=%P", "main").split() == [before, result.commit]
        assert git(origin, "show", "main:models/stg_orders.sql") + "\n" == FIXED
        assert git(project, "log", "-1", "--format=%H", "origin/main") == result.merge_commit
        # Author is the approver, committer is the bot; the incident is a trailer.
        fix = git(origin, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B", result.commit)
        assert fix.startswith(f"{APPROVER}|airflow-selfheal <{COMMITTER_EMAIL}>|selfheal: follow the rename")
        assert f"Selfheal-Incident: {INCIDENT}" in fix
        # The project had main checked out: it was fast-forwarded, and is clean, on main, with no temp worktree.
        assert (project / "models/stg_orders.sql").read_text() == FIXED
        assert git(project, "status", "--porcelain") == ""
        assert git(project, "branch", "--show-current") == "main"
        assert len(worktrees(project)) == 1
        assert result.to_dict()["merge_commit"] == result.merge_commit
        # Production builds the merge commit, which is what the remote's main now is.
        assert result.deployed_sha == result.merge_commit == git(origin, "rev-parse", "main")
        # A property, not a field: the repair step passes to_dict() and deployed_sha side by side.
        assert "deployed_sha" not in result.to_dict()

    def test_user_checkout_on_another_branch_is_not_disturbed(
        self, hook: GitPromotionHook, project: Path, origin: Path
    ) -> None:
        git(project, "checkout", "-q", "-b", "feature")
        (project / "models/other.sql").write_text("select 2  -- work in progress\n")

        result = promote(hook, project)

        assert git(project, "branch", "--show-current") == "feature"
        assert git(project, "status", "--porcelain") == "M models/other.sql"
        assert (project / "models/stg_orders.sql").read_text() == ORIGINAL
        assert git(project, "rev-parse", "main") == result.merge_commit == git(origin, "rev-parse", "main")

    def test_rerun_after_success_is_idempotent(
        self, hook: GitPromotionHook, project: Path, origin: Path
    ) -> None:
        first = promote(hook, project)

        second = promote(hook, project)

        assert second.reused_branch is True
        assert (second.commit, second.merge_commit) == (first.commit, first.merge_commit)
        assert second.deployed_sha == first.deployed_sha == first.merge_commit
        assert git(origin, "rev-parse", "main") == first.merge_commit
        assert git(origin, "rev-list", "--count", "--merges", "main") == "1"

    def test_rerun_reuses_a_branch_left_by_a_crash(
        self, hook: GitPromotionHook, project: Path, origin: Path
    ) -> None:
        # A crash after the branch was pushed but before the merge, on another worker: only the remote has it.
        other_worker = project.parent / "other-worker"
        git(project.parent, "clone", "-q", str(origin), str(other_worker))
        left = promote(hook, other_worker, mode="branch_only")

        result = promote(hook, project)

        assert result.reused_branch is True
        assert result.commit == left.commit
        assert git(origin, "rev-parse", "main") == result.merge_commit

    def test_existing_branch_with_other_content_is_refused(
        self, hook: GitPromotionHook, project: Path, origin: Path
    ) -> None:
        promote(hook, project, mode="branch_only")

        with pytest.raises(
            PromotionError, match=rf"branch {BRANCH} already exists with different content.*git branch -D"
        ):
            promote(hook, project, files={"models/stg_orders.sql": "select 42\n"})

        assert git(origin, "show", "main:models/stg_orders.sql") + "\n" == ORIGINAL

    def test_conflict_aborts_cleanly_and_keeps_branch(
        self, hook: GitPromotionHook, project: Path, origin: Path, tmp_path: Path
    ) -> None:
        prepared = promote(hook, project, mode="branch_only")
        colleague_tip = push_from_colleague(tmp_path, origin, "models/stg_orders.sql", "select 'colleague'\n")
        local_main = git(project, "rev-parse", "main")

        with pytest.raises(
            MergeConflictError, match=r"conflicts in models/stg_orders\.sql.*aborted"
        ) as caught:
            promote(hook, project)

        assert caught.value.files == ["models/stg_orders.sql"]
        assert caught.value.branch == BRANCH
        assert git(project, "status", "--porcelain") == ""
        assert git(project, "rev-parse", "main") == local_main
        assert git(origin, "rev-parse", "main") == colleague_tip
        assert git(project, "rev-parse", BRANCH) == prepared.commit
        assert git(origin, "rev-parse", BRANCH) == prepared.commit
        assert len(worktrees(project)) == 1
        assert not (project / ".git" / "MERGE_HEAD").exists()

    def test_deploy_branch_moved_without_conflict_merges(
        self, hook: GitPromotionHook, project: Path, origin: Path, tmp_path: Path
    ) -> None:
        promote(hook, project, mode="branch_only")
        colleague_tip = push_from_colleague(tmp_path, origin, "models/other.sql", "select 3\n")

        result = promote(hook, project)

        assert git(origin, "log", "-1", "--format=%P", "main").split() == [colleague_tip, result.commit]
        assert (project / "models/other.sql").read_text() == "select 3\n"
        assert (project / "models/stg_orders.sql").read_text() == FIXED


class TestBranchOnlyMode:
    def test_pushes_branch_and_leaves_main(self, hook: GitPromotionHook, project: Path, origin: Path) -> None:
        before = git(origin, "rev-parse", "main")

        result = promote(hook, project, mode="branch_only")

        assert result.pr_hint == BRANCH
        assert (result.merged, result.merge_commit, result.pushed) == (False, None, True)
        assert result.deployed_sha == result.commit
        assert git(origin, "rev-parse", BRANCH) == result.commit
        assert git(origin, "show", f"{BRANCH}:models/stg_orders.sql") + "\n" == FIXED
        assert git(origin, "rev-parse", "main") == before
        assert (project / "models/stg_orders.sql").read_text() == ORIGINAL


class TestRefusals:
    @pytest.mark.parametrize(
        "dirty",
        [
            pytest.param("modified", id="modified"),
            pytest.param("staged", id="staged"),
            pytest.param("untracked", id="untracked"),
        ],
    )
    def test_uncommitted_change_to_a_fixed_file(
        self, hook: GitPromotionHook, project: Path, origin: Path, dirty: str
    ) -> None:
        path = "models/new_guard.sql" if dirty == "untracked" else "models/stg_orders.sql"
        (project / path).write_text("-- someone's work\n")
        if dirty == "staged":
            git(project, "add", path)

        with pytest.raises(PromotionError, match=rf"uncommitted changes in .* to {path}.*Commit or discard"):
            promote(hook, project, files={path: FIXED})

        assert (project / path).read_text() == "-- someone's work\n"
        assert git(project, "branch", "--list", BRANCH) == ""
        assert git(origin, "branch", "--list", BRANCH) == ""

    @pytest.mark.parametrize(
        "path",
        [
            pytest.param("../outside.sql", id="parent"),
            pytest.param("models/../../outside.sql", id="nested-parent"),
            pytest.param("/etc/outside.sql", id="absolute"),
            pytest.param(".git/hooks/pre-commit", id="git-dir"),
            pytest.param("", id="empty"),
        ],
    )
    def test_path_outside_the_repository(self, hook: GitPromotionHook, project: Path, path: str) -> None:
        with pytest.raises(ValueError, match=r"file path .*relative to the project directory"):
            promote(hook, project, files={path: FIXED})

        assert git(project, "branch", "--list", BRANCH) == ""

    def test_symlink_leading_outside_the_repository(
        self, hook: GitPromotionHook, project: Path, origin: Path, tmp_path: Path
    ) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (project / "linked").symlink_to(outside)
        git(project, "add", "linked")
        git(project, "commit", "-q", "-m", "a link")
        git(project, "push", "-q", "origin", "main")

        with pytest.raises(ValueError, match=r"leads outside the repository through a symbolic link"):
            promote(hook, project, files={"linked/x.sql": FIXED})

        assert list(outside.iterdir()) == []

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            pytest.param({"incident_id": "../main"}, "cannot name a git branch", id="incident-id"),
            pytest.param({"author": "jane"}, "must look like", id="author"),
            pytest.param({"mode": "rebase"}, "mode must be one of", id="mode"),
            pytest.param({"files": {}}, "no files", id="no-files"),
            pytest.param({"deploy_branch": "bad..name"}, "not a valid git branch name", id="deploy-branch"),
        ],
    )
    def test_bad_arguments(
        self, hook: GitPromotionHook, project: Path, overrides: dict, message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            promote(hook, project, **overrides)

    def test_not_a_repository(self, hook: GitPromotionHook, tmp_path: Path) -> None:
        with pytest.raises(PromotionError, match="not inside a git working tree"):
            promote(hook, tmp_path)

    def test_respected_hook_can_block_the_commit(self, project: Path, origin: Path) -> None:
        pre_commit = project / ".git" / "hooks" / "pre-commit"
        pre_commit.write_text("#!/bin/sh\necho 'sqlfluff: lint failed' >&2\nexit 1\n")
        pre_commit.chmod(0o755)

        with pytest.raises(PromotionError, match="sqlfluff: lint failed"):
            promote(GitPromotionHook(timeout=30), project)
        result = promote(GitPromotionHook(respect_hooks=False, timeout=30), project)

        assert git(origin, "rev-parse", "main") == result.merge_commit


class TestWithoutRemote:
    def test_merges_locally(self, hook: GitPromotionHook, tmp_path: Path) -> None:
        repo = tmp_path / "local"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        base = commit_file(repo, "models/stg_orders.sql", ORIGINAL, "initial")

        result = promote(hook, repo)

        assert (result.merged, result.pushed, result.local_deploy_updated) == (True, False, True)
        assert git(repo, "log", "-1", "--format=%P", "main").split() == [base, result.commit]
        assert (repo / "models/stg_orders.sql").read_text() == FIXED
        assert git(repo, "status", "--porcelain") == ""

    def test_conflict_on_local_branch(self, hook: GitPromotionHook, tmp_path: Path) -> None:
        repo = tmp_path / "local"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        commit_file(repo, "models/stg_orders.sql", ORIGINAL, "initial")
        promote(hook, repo, mode="branch_only")
        moved = commit_file(repo, "models/stg_orders.sql", "select 'hotfix'\n", "hotfix")

        with pytest.raises(MergeConflictError, match="models/stg_orders.sql"):
            promote(hook, repo)

        assert git(repo, "rev-parse", "main") == moved
        assert git(repo, "status", "--porcelain") == ""
        assert (repo / "models/stg_orders.sql").read_text() == "select 'hotfix'\n"

    def test_project_in_a_subdirectory(self, hook: GitPromotionHook, tmp_path: Path) -> None:
        repo = tmp_path / "monorepo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        commit_file(repo, "dbt/shop/models/stg_orders.sql", ORIGINAL, "initial")

        result = promote(hook, repo / "dbt" / "shop", remote=None)

        assert git(repo, "show", f"{result.merge_commit}:dbt/shop/models/stg_orders.sql") + "\n" == FIXED
        assert not (repo / "models").exists()


class TestProbes:
    def test_repository(self, project: Path) -> None:
        assert is_git_repo(project) is True
        assert head_sha(project) == git(project, "rev-parse", "HEAD")

    def test_not_a_repository(self, tmp_path: Path, origin: Path) -> None:
        plain = tmp_path / "plain"
        plain.mkdir()
        assert (is_git_repo(plain), head_sha(plain)) == (False, None)
        assert is_git_repo(origin) is False  # bare: no working tree to promote into
        assert head_sha(tmp_path / "missing") is None

    def test_repository_without_commits(self, tmp_path: Path) -> None:
        empty = tmp_path / "empty"
        empty.mkdir()
        git(empty, "init", "-q")
        assert (is_git_repo(empty), head_sha(empty)) == (True, None)


def test_branch_name() -> None:
    assert branch_name(INCIDENT) == BRANCH


@pytest.mark.parametrize(
    "incident_id",
    [
        pytest.param("-inc", id="leading-dash"),
        pytest.param("inc/1", id="slash"),
        pytest.param("inc.lock", id="dot"),
        pytest.param("inc 1", id="space"),
        pytest.param("x" * 129, id="too-long"),
    ],
)
def test_branch_name_refuses_unsafe_ids(incident_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name a git branch"):
        branch_name(incident_id)
