"""A git copy of a dev dbt project (the shop by default), as a deployment keeps it: a working tree on ``main`` with a bare ``origin``.

The repair loop promotes approved fixes by committing to the project's git repository. The demo and the
tests give it this copy, so the repository's own ``dev/demo_project`` (or ``dev/rides_project``) is never touched.
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


def git_copy(root: Path, source: Path = DEMO_PROJECT, *, folder: str | None = None) -> tuple[Path, Path]:
    """
    Copy ``source`` to ``root/<folder>``, commit it on ``main`` and push it to a bare ``root/origin.git``.

    Build output (``target``, ``logs``, ``dbt_packages``) is not copied and is ignored by git.

    :param folder: the copy's folder name; default the dev project's (``shop_dbt``, ``rides_dbt``), or
        ``<source name>_dbt`` for any other project.
    :return: ``(project, origin)``.
    """
    from dev.projects import project_for_dir

    dev_project = project_for_dir(source)
    if folder is None:
        folder = dev_project.git_dir_name if dev_project else f"{Path(source).resolve().name}_dbt"
    team = dev_project.key if dev_project else Path(source).resolve().name
    project = root / folder
    shutil.copytree(source, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / ".gitignore").write_text("target/\nlogs/\ndbt_packages/\n")
    origin = root / "origin.git"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(origin))
    git(project, "init", "--quiet", "--initial-branch=main")
    git(project, "add", "-A")
    identity = ["-c", f"user.name={team} data team", "-c", f"user.email=data@{team}.invalid"]
    git(project, *identity, "commit", "--quiet", "-m", f"{team} dbt project")
    git(project, "remote", "add", "origin", str(origin))
    git(project, "push", "--quiet", "origin", "main")
    return project, origin
