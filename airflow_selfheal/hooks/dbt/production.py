"""
dbt in production after a fix is promoted: ``dbt build`` of the deployed project, ``dbt parse`` of a checkout.

The same child process and runner as validation (:mod:`~airflow_selfheal.hooks.dbt.runner`): its own process
group killed as a whole on timeout, the password only in the child's environment and redacted from the output,
dbt flags in the worker's environment dropped. What differs is the profile: a production profile of its own
(:func:`~airflow_selfheal.hooks.dbt.profiles.production_profile`, target ``selfheal_prod``) that never names the
validation target, and that is refused if it would build into a selfheal clone. Nothing is written into the
project directory: ``target/`` and ``logs/`` go to a folder of the run, so a checkout stays clean and a stale
``target/manifest.json`` there is never read.

.. code-block:: python

    hook = DbtProductionHook(timeout=3600)
    with checkout_at(repo, promotion.deployed_sha, remote="origin") as checkout:
        manifest = hook.parse(checkout, snowflake_conn_id="snowflake_prod", prod_database="PROD", work_dir=work)
        result = hook.build(checkout, select="stg_orders+", snowflake_conn_id="snowflake_prod", prod_database="PROD")
    if not result.success:
        print(result.error, result.logs_excerpt)
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.redaction import secrets_of_connection
from airflow_selfheal.hooks.dbt import profiles
from airflow_selfheal.hooks.dbt.results import FAILED_STATUSES
from airflow_selfheal.hooks.dbt.runner import (
    REQUEST_FILE,
    ChildOutcome,
    dbt_log_excerpt,
    read_run_results,
    run_dbt_child,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3600.0
REPORT_FILE = "report.json"
MANIFEST_FILE = "manifest.json"


class DbtRunError(RuntimeError):
    """A production dbt command did not produce what was asked (e.g. ``dbt parse`` wrote no manifest)."""


@dataclass(frozen=True)
class ProductionBuildResult:
    """
    What :meth:`DbtProductionHook.build` did.

    :param success: True when dbt exited 0 within the timeout.
    :param select: the selector built.
    :param returncode: the child's exit code, as dbt's CLI gives it (0 success, 1 nodes failed, 2 dbt raised);
        None when it was killed on timeout.
    :param elapsed_seconds: wall time of the run.
    :param nodes: ``{"unique_id", "status"}`` per node dbt reported, in dbt's order.
    :param logs_excerpt: dbt's output from its ``Completed with … errors`` summary, else its tail (at most 4,000
        characters), redacted.
    :param manifest_path: the copy of this build's ``manifest.json`` in the caller's ``manifest_dir``; None when
        no folder was given or dbt wrote no manifest.
    :param timed_out: whether the timeout ran out and dbt was stopped.
    :param error: why the build did not succeed, in a sentence; None on success.
    """

    success: bool
    select: str
    returncode: int | None
    elapsed_seconds: float
    nodes: tuple[Mapping[str, str], ...]
    logs_excerpt: str
    manifest_path: Path | None
    timed_out: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """:return: a JSON-compatible dict for XCom and the audit trail."""
        return {
            "success": self.success,
            "select": self.select,
            "returncode": self.returncode,
            "elapsed_seconds": self.elapsed_seconds,
            "nodes": [dict(node) for node in self.nodes],
            "logs_excerpt": self.logs_excerpt,
            "manifest_path": None if self.manifest_path is None else str(self.manifest_path),
            "timed_out": self.timed_out,
            "error": self.error,
        }


class DbtProductionHook:
    """
    ``dbt build`` and ``dbt parse`` in production, in a bounded child process; see the module docstring.

    A plain class, like :class:`~airflow_selfheal.hooks.dbt.validation.DbtValidationHook`: it reads the Snowflake
    connection through :class:`~airflow_selfheal.hooks.snowflake.SelfhealSnowflakeHook` and owns none itself.

    :param timeout: default seconds before a dbt child is killed.
    :param threads: dbt threads.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, threads: int = 4) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.timeout = timeout
        self.threads = threads

    def build(
        self,
        project_dir: str | Path,
        *,
        select: str,
        snowflake_conn_id: str,
        prod_database: str,
        timeout: float | None = None,
        manifest_dir: str | Path | None = None,
    ) -> ProductionBuildResult:
        """
        ``dbt build --select <select>`` of ``project_dir`` into ``prod_database``, tests included.

        :param project_dir: the dbt project: the live (promoted) project, or a checkout of the deployed commit.
        :param select: the dbt selector; several separated by spaces, e.g. ``stg_orders+ fct_orders+``.
        :param snowflake_conn_id: the Airflow Snowflake connection (endpoint and credentials).
        :param prod_database: the production database; a selfheal clone name is refused.
        :param timeout: seconds before dbt is stopped; default the hook's.
        :param manifest_dir: a folder the caller owns; when given, the build's ``manifest.json`` is copied there.
        :return: the result; a failed or timed-out build is a result, not an exception.
        :raises ProductionRefused: before dbt starts, for a clone as the target or an unsupported connection.
        :raises ValueError: for an empty selector or a folder that is not a dbt project.
        """
        if not isinstance(select, str) or not select.strip():
            raise ValueError("select must name the nodes to build, e.g. 'stg_orders+'")
        project = _project(project_dir)
        with tempfile.TemporaryDirectory(prefix="selfheal-prod-") as folder:
            work = Path(folder)
            log.info("dbt build --select %s of %s in production (%s)", select, project, prod_database)
            outcome, report, secrets = self._run(
                project, work, "build", select, snowflake_conn_id, prod_database, timeout
            )
            run_results = read_run_results(work / "target" / "run_results.json", secrets=secrets)
            nodes = tuple(
                {"unique_id": node.unique_id, "status": node.status}
                for node in (run_results[1] if run_results else [])
            )
            manifest_path = None
            built_manifest = work / "target" / MANIFEST_FILE
            if manifest_dir is not None and built_manifest.is_file():
                destination = Path(manifest_dir)
                destination.mkdir(parents=True, exist_ok=True)
                manifest_path = Path(shutil.copyfile(built_manifest, destination / MANIFEST_FILE))
        success = outcome.returncode == 0 and not outcome.timed_out
        result = ProductionBuildResult(
            success=success,
            select=select,
            returncode=outcome.returncode,
            elapsed_seconds=round(outcome.elapsed_seconds, 1),
            nodes=nodes,
            logs_excerpt=dbt_log_excerpt(outcome.output),
            manifest_path=manifest_path,
            timed_out=outcome.timed_out,
            error=None if success else self._error("build", outcome, report, timeout, nodes),
        )
        log.info(
            "production dbt build --select %s: %s (%d nodes, %.1fs)",
            select,
            "passed" if success else f"failed: {result.error}",
            len(nodes),
            result.elapsed_seconds,
        )
        return result

    def parse(
        self,
        project_dir: str | Path,
        *,
        snowflake_conn_id: str,
        prod_database: str,
        work_dir: str | Path,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """
        ``dbt parse`` of ``project_dir`` with the production profile; the manifest of exactly these files.

        :param project_dir: the dbt project, e.g. a checkout of the deployed commit
            (:func:`~airflow_selfheal.hooks.git.worktree.checkout_at`).
        :param snowflake_conn_id: the Airflow Snowflake connection; dbt parse renders the profile, it does not
            connect.
        :param prod_database: the production database the manifest's nodes resolve to.
        :param work_dir: a folder the caller owns: dbt writes ``target/`` (``target/manifest.json``) and ``logs/``
            there, never into the project.
        :param timeout: seconds before dbt is stopped; default the hook's.
        :return: the parsed ``manifest.json``.
        :raises DbtRunError: when dbt failed, timed out or wrote no manifest; the message holds dbt's output.
        :raises ProductionRefused: before dbt starts, for a clone as the target or an unsupported connection.
        """
        project = _project(project_dir)
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        outcome, report, _ = self._run(project, work, "parse", "", snowflake_conn_id, prod_database, timeout)
        manifest = work / "target" / MANIFEST_FILE
        if outcome.returncode != 0 or outcome.timed_out or not manifest.is_file():
            reason = self._error("parse", outcome, report, timeout, ())
            raise DbtRunError(
                f"dbt parse of {project} did not produce a manifest: {reason}\n{dbt_log_excerpt(outcome.output)}"
            )
        data: dict[str, Any] = json.loads(manifest.read_text(encoding="utf-8"))
        return data

    def _run(
        self,
        project: Path,
        work: Path,
        command: str,
        select: str,
        snowflake_conn_id: str,
        prod_database: str,
        timeout: float | None,
    ) -> tuple[ChildOutcome, dict[str, Any], list[str]]:
        """Write the production profile and the request into ``work``, run the child; outcome, report, secrets."""
        from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

        prod = profiles.check_production_target(prod_database)
        conn_params = SelfhealSnowflakeHook(snowflake_conn_id=snowflake_conn_id).conn_params
        password = str(conn_params.get("password") or "")
        profile = profiles.production_profile(conn_params, prod_database=prod, threads=self.threads)
        profiles_dir = work / "profiles"
        profiles_dir.mkdir(exist_ok=True)
        profile_path = profiles_dir / "profiles.yml"
        profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        profiles.check_production_profile(profile_path, prod_database=prod, password=password)
        report_path = work / REPORT_FILE
        report_path.unlink(missing_ok=True)
        request = {
            "kind": "production",
            "command": command,
            "project_dir": str(project),
            "profiles_dir": str(profiles_dir),
            "target_path": str(work / "target"),
            "log_path": str(work / "logs"),
            "select": select,
            "threads": self.threads,
            "report_path": str(report_path),
        }
        (work / REQUEST_FILE).write_text(json.dumps(request, indent=2))
        outcome = run_dbt_child(
            work / REQUEST_FILE, cwd=work, password=password, timeout=timeout or self.timeout
        )
        report: dict[str, Any] = {}
        if report_path.is_file():
            report = json.loads(report_path.read_text())
        return outcome, report, secrets_of_connection(conn_params)

    def _error(
        self,
        command: str,
        outcome: ChildOutcome,
        report: Mapping[str, Any],
        timeout: float | None,
        nodes: tuple[Mapping[str, str], ...],
    ) -> str:
        if outcome.timed_out:
            return f"dbt {command} did not finish within {timeout or self.timeout:.0f}s; it was stopped"
        if not report:
            return f"the dbt process exited with code {outcome.returncode} before reporting"
        if report.get("reason"):
            return str(report["reason"])
        failed = [node["unique_id"] for node in nodes if node["status"] in FAILED_STATUSES]
        if failed:
            shown = ", ".join(failed[:10]) + (f" and {len(failed) - 10} more" if len(failed) > 10 else "")
            return f"dbt {command} failed: {shown}"
        return f"dbt {command} exited with code {outcome.returncode}"


def _project(project_dir: str | Path) -> Path:
    project = Path(project_dir)
    if not (project / "dbt_project.yml").is_file():
        raise ValueError(f"{project} is not a dbt project: it has no dbt_project.yml")
    return project
