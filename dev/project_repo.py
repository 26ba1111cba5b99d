"""A git copy of the demo dbt project, as a deployment keeps it: a working tree on ``main`` with a bare ``origin``.

The repair loop promotes approved fixes by committing to the project's git repository. The demo and the
tests give it this copy, so the repository's own ``dev/demo_project`` is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dev.airflow_env import DEMO_PROJECT


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stripped stdout; a failure raises with git's own message."""
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {completed.stderr.strip()}")
    return completed.stdout.strip()


def git_copy(root: Path, source: Path = DEMO_PROJECT) -> tuple[Path, Path]:
    """
    Copy ``source`` to ``root/shop_dbt``, commit it on ``main`` and push it to a bare ``root/origin.git``.

    Build output (``target``, ``logs``, ``dbt_packages``) is not copied and is ignored by git.

    :return: ``(project, origin)``.
    """
    project = root / "shop_dbt"
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / ".gitignore").write_text("target/\nlogs/\ndbt_packages/\n")
    origin = root / "origin.git"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "-A")
    identity = ["-c", "user.name=shop data team", "-c", "user.email=data@shop.invalid"]
    git(project, *identity, "commit", "--quiet", "-m", "shop dbt project")
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")
    return project, origin
