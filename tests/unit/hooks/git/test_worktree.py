"""checkout_at against real git: exactly the commit, fetched when this clone is behind, always cleaned up."""

from __future__ import annotations

import subprocess
import tempfile
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.hooks.git import CommitNotFoundError, GitError, checkout_at

if TYPE_CHECKING:
    from pathlib import Path

# Identity for the test's own setup commits only (conftest.py hides the worker's own).
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


def worktrees(repo: Path) -> list[str]:
    return [
        line.removeprefix("worktree ")
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


@pytest.fixture(autouse=True)
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where this test's temporary folders go, so that leftovers can be seen."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare remote whose main has two commits: the model as ``v1``, then as ``v2``."""
    seed = tmp_path / "seed"
    seed.mkdir()
    git(seed, "init", "-q", "-b", "main")
    commit_file(seed, "models/a.sql", "select 'v1'\n", "v1")
    commit_file(seed, "models/a.sql", "select 'v2'\n", "v2")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


@pytest.fixture
def worker(tmp_path: Path, origin: Path) -> Path:
    """This worker's clone of the project, on main, with an uncommitted change of its own."""
    clone = tmp_path / "worker"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    (clone / "models" / "a.sql").write_text("select 'work in progress'\n")
    return clone


def push_commit(tmp_path: Path, origin: Path, content: str, *, branch: str = "main") -> str:
    """A commit made and pushed by another worker: ``origin`` has it, this worker's clone does not."""
    other = tmp_path / f"other-{branch.replace('/', '-')}"
    if not other.exists():
        git(tmp_path, "clone", "-q", str(origin), str(other))
    git(other, "checkout", "-q", "-B", branch)
    sha = commit_file(other, "models/a.sql", content, f"{branch}: {content.strip()}")
    git(other, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return sha


class TestCheckout:
    def test_an_older_commit_exactly_and_the_users_checkout_untouched(
        self, worker: Path, temp_root: Path
    ) -> None:
        v1 = git(worker, "rev-parse", "HEAD~1")

        with checkout_at(worker, v1) as tree:
            assert (tree / "models" / "a.sql").read_text() == "select 'v1'\n"
            assert git(tree, "rev-parse", "HEAD") == v1
            assert git(tree, "status", "--porcelain") == ""
            assert str(tree) in worktrees(worker)
            assert not tree.is_relative_to(worker)
            assert tree.is_relative_to(temp_root)

        assert not tree.exists()
        assert list(temp_root.iterdir()) == []
        assert worktrees(worker) == [str(worker)]
        assert (worker / "models" / "a.sql").read_text() == "select 'work in progress'\n"
        assert git(worker, "branch", "--show-current") == "main"

    def test_a_clone_that_is_behind_fetches_the_commit(
        self, tmp_path: Path, origin: Path, worker: Path
    ) -> None:
        ahead = push_commit(tmp_path, origin, "select 'v3'\n")
        assert subprocess.run(["git", "cat-file", "-e", ahead], cwd=worker, check=False).returncode != 0

        with checkout_at(worker, ahead, remote="origin") as tree:
            assert (tree / "models" / "a.sql").read_text() == "select 'v3'\n"
            assert git(tree, "rev-parse", "HEAD") == ahead

        assert worktrees(worker) == [str(worker)]
        # Only objects were fetched: the worker's branch and working tree stay as they were.
        assert git(worker, "rev-parse", "main") != ahead
        assert (worker / "models" / "a.sql").read_text() == "select 'work in progress'\n"

    def test_a_commit_on_a_branch_only_the_remote_has(
        self, tmp_path: Path, origin: Path, worker: Path
    ) -> None:
        fix = push_commit(tmp_path, origin, "select 'fix'\n", branch="selfheal/inc-1")

        with checkout_at(str(worker), fix.upper(), remote=str(origin)) as tree:
            assert (tree / "models" / "a.sql").read_text() == "select 'fix'\n"

    def test_removed_when_the_body_raises(self, worker: Path, temp_root: Path) -> None:
        sha = git(worker, "rev-parse", "HEAD")
        seen: list[Path] = []

        def build() -> None:
            with checkout_at(worker, sha) as tree:
                seen.append(tree)
                (tree / "target").mkdir()
                (tree / "target" / "manifest.json").write_text("{}")  # untracked output of the body
                (tree / "models" / "a.sql").write_text("changed in the checkout\n")
                raise RuntimeError("dbt failed")

        with pytest.raises(RuntimeError, match="dbt failed"):
            build()

        (tree,) = seen
        assert not tree.exists()
        assert list(temp_root.iterdir()) == []
        assert worktrees(worker) == [str(worker)]
        assert git(worker, "worktree", "prune", "--dry-run", "-v") == ""

    def test_a_project_in_a_subfolder_yields_that_subfolder(self, tmp_path: Path) -> None:
        repo = tmp_path / "monorepo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        sha = commit_file(repo, "dbt/shop/dbt_project.yml", "name: shop\n", "project")

        with checkout_at(repo / "dbt" / "shop", sha) as project:
            assert (project / "dbt_project.yml").read_text() == "name: shop\n"
            assert project.name == "shop"

    def test_hooks_of_the_repository_do_not_run(self, worker: Path) -> None:
        marker = worker.parent / "post-checkout-ran"
        hook = worker / ".git" / "hooks" / "post-checkout"
        hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
        hook.chmod(0o755)

        with checkout_at(worker, git(worker, "rev-parse", "HEAD")):
            pass

        assert not marker.exists()


class TestNotFound:
    def test_missing_everywhere_names_the_sha_the_repo_and_the_remote(
        self, worker: Path, temp_root: Path
    ) -> None:
        unknown = "0123456789abcdef0123456789abcdef01234567"

        with pytest.raises(
            CommitNotFoundError, match=rf"{unknown} is not in the repository at {worker}, nor on origin"
        ) as caught:
            with checkout_at(worker, unknown, remote="origin"):
                pytest.fail("the body must not run")

        assert (caught.value.sha, caught.value.repo) == (unknown, worker)
        assert worktrees(worker) == [str(worker)]
        assert list(temp_root.iterdir()) == []

    def test_missing_locally_without_a_remote(self, tmp_path: Path, origin: Path, worker: Path) -> None:
        ahead = push_commit(tmp_path, origin, "select 'v3'\n")
        with pytest.raises(CommitNotFoundError, match="no remote was given to fetch it from"):
            with checkout_at(worker, ahead):
                pytest.fail("the body must not run")

    def test_an_unreachable_remote_is_named(self, worker: Path, tmp_path: Path) -> None:
        missing = "89abcdef0123456789abcdef0123456789abcdef"
        with pytest.raises(CommitNotFoundError, match=r"nor on .*nowhere\.git after fetching"):
            with checkout_at(worker, missing, remote=str(tmp_path / "nowhere.git")):
                pytest.fail("the body must not run")

    @pytest.mark.parametrize(
        "sha",
        [
            pytest.param("main", id="branch"),
            pytest.param("abc1234", id="abbreviated"),
            pytest.param("HEAD~1", id="revision"),
            pytest.param("--upload-pack=touch /tmp/x", id="option"),
        ],
    )
    def test_only_a_full_commit_id(self, worker: Path, sha: str) -> None:
        with pytest.raises(ValueError, match="full commit id"), checkout_at(worker, sha):
            pytest.fail("the body must not run")

    def test_not_a_repository(self, tmp_path: Path) -> None:
        plain = tmp_path / "plain"
        plain.mkdir()
        with pytest.raises(GitError, match="not inside a git working tree"):
            with checkout_at(plain, "0" * 40):
                pytest.fail("the body must not run")
