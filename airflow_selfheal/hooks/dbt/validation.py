"""
Validate a sandboxed fix with ``dbt build`` against the incident's clone, never against production.

:meth:`DbtValidationHook.build` copies the sandbox's project into a fresh attempt folder
(``<run>/validation/attempt-<n>``), writes a ``profiles.yml`` there from the Airflow Snowflake connection with
``database`` set to the clone, and runs ``dbt build --select <select>`` (tests included) in a child Python process
(:mod:`~airflow_selfheal.hooks.dbt.child`, started and bounded by :mod:`~airflow_selfheal.hooks.dbt.runner`). The
result is parsed from ``target/run_results.json`` into a :class:`~airflow_selfheal.hooks.dbt.results.ValidationResult`.

**Why production cannot be written.** Before dbt starts: the target must be a selfheal clone name and must not be
the connection's (production) database, and the written profile is read back and must name the clone
(:mod:`~airflow_selfheal.hooks.dbt.profiles`). In the child, after parsing and before building: every model,
seed, snapshot and test must resolve to the clone (a model with its own ``database`` config is refused), and no
hook may name the production database. Sources are read only, but a source whose ``database`` is set explicitly
to production (``database: DEMO`` in the demo's ``_sources.yml``) would make the clone build read production
data; the attempt's *copy* of that YAML is rewritten to point at the clone, the sandbox itself is left as is (the
rewrite is not part of the fix), and the rewrite is recorded in the result as evidence
(:mod:`~airflow_selfheal.hooks.dbt.isolation`).

.. code-block:: python

    result = DbtValidationHook().build(
        sandbox.project_dir,
        select="stg_orders+",
        target_database=clone.clone_database,
        snowflake_conn_id="snowflake_prod",
    )
    if result.success and result.files_hash == sandbox.files_hash():
        ...  # a proposal
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.redaction import secrets_of_connection, truncate
from airflow_selfheal.hooks.dbt import profiles
from airflow_selfheal.hooks.dbt.results import FAILED_STATUSES, PASSED_STATUSES, NodeStatus, ValidationResult
from airflow_selfheal.hooks.dbt.runner import DBT_COMMANDS, REQUEST_FILE, read_run_results, run_dbt_child
from airflow_selfheal.hooks.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 3600.0
LOG_EXCERPT_LIMIT = 6000

# Files of an attempt folder; names starting with "." stay local (see Sandbox.publish).
GUARD_FILE = "guard.json"
LOG_FILE = "dbt.log"
RUN_RESULTS_FILE = "run_results.json"
RESULT_FILE = "result.json"


class DbtValidationHook:
    """
    Run ``dbt build`` for a sandbox against a clone, isolated from production; see the module docstring.

    A plain class rather than an Airflow ``BaseHook``: it owns no connection of its own (it reads the Snowflake
    connection through :class:`~airflow_selfheal.hooks.snowflake.SelfhealSnowflakeHook`), and its package is also
    the entry point of the dbt child process, which must start without importing Airflow.

    .. code-block:: python

        result = DbtValidationHook().build(
            sandbox.project_dir, select="stg_orders+", target_database=clone, snowflake_conn_id="snowflake_prod"
        )

    :param timeout: seconds before the dbt child is killed and the attempt fails.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout

    def build(
        self,
        sandbox_dir: Path | str,
        *,
        select: str,
        target_database: str,
        snowflake_conn_id: str,
        threads: int = 4,
        prod_database: str | None = None,
        command: str = "build",
    ) -> ValidationResult:
        """
        Validate the sandbox: ``dbt build --select <select>`` into ``target_database``, tests included.

        :param sandbox_dir: the sandbox's project copy (:attr:`Sandbox.project_dir`); any other folder is refused.
        :param select: the dbt selector, e.g. ``stg_orders+``.
        :param target_database: the clone; production or a name that is not a selfheal clone is refused.
        :param snowflake_conn_id: the Airflow Snowflake connection (the production one; only its endpoint and
            credentials are used).
        :param threads: dbt threads.
        :param prod_database: the production database, when the connection names another one or none; the
            connection's database is refused as a target as well.
        :param command: ``build`` (models and tests) or ``run`` (models only, e.g. to fill a clone's views).
        :return: the result (also saved as ``result.json`` in the attempt folder).
        :raises ValidationRefused: before anything runs, when isolation from production is not guaranteed.
        """
        from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

        if not select or not select.strip():
            raise ValueError("select must name the nodes to build, e.g. 'stg_orders+'")
        if command not in DBT_COMMANDS:
            raise ValueError(f"command must be one of {sorted(DBT_COMMANDS)}, got {command!r}")
        started = time.monotonic()
        sandbox = Sandbox.open(Path(sandbox_dir))
        conn_params = SelfhealSnowflakeHook(snowflake_conn_id=snowflake_conn_id).conn_params
        connection_database = conn_params.get("database")
        clone, prod = profiles.check_target(target_database, prod_database or connection_database)
        if prod_database and connection_database:
            profiles.check_target(target_database, connection_database)  # the connection's database too
        password = str(conn_params.get("password") or "")
        secrets = secrets_of_connection(conn_params)
        profile = profiles.validation_profile(conn_params, clone_database=clone, threads=threads)

        files_hash = sandbox.files_hash()
        workspace = sandbox.new_validation_dir()
        project = workspace / "project"
        shutil.copytree(sandbox.project_dir, project, symlinks=True)
        packages = sandbox.live_project / "dbt_packages"
        if packages.is_dir() and not (project / "dbt_packages").exists():
            shutil.copytree(packages, project / "dbt_packages", symlinks=True)
        profiles_dir = workspace / "profiles"
        profiles_dir.mkdir()
        profile_path = profiles_dir / "profiles.yml"
        profile_path.write_text(yaml.safe_dump(profile, sort_keys=False))
        profiles.check_profile(profile_path, clone_database=clone, prod_database=prod, password=password)

        request = {
            "kind": "validation",
            "project_dir": str(project),
            "profiles_dir": str(profiles_dir),
            "target_path": str(workspace / "target"),
            "log_path": str(workspace / "logs"),
            "select": select,
            "command": command,
            "threads": threads,
            "clone_database": clone,
            "prod_database": prod,
            "report_path": str(workspace / GUARD_FILE),
        }
        (workspace / REQUEST_FILE).write_text(json.dumps(request, indent=2))
        log.info(
            "validating %s with dbt build --select %s in %s (attempt %s)",
            sandbox.incident_id,
            select,
            clone,
            workspace.name,
        )
        outcome = run_dbt_child(
            workspace / REQUEST_FILE, cwd=workspace, password=password, timeout=self.timeout, secrets=secrets
        )

        (workspace / LOG_FILE).write_text(outcome.output)
        guard: dict[str, Any] = {}
        if (workspace / GUARD_FILE).is_file():
            guard = json.loads((workspace / GUARD_FILE).read_text())
        nodes: list[NodeStatus] = []
        if guard.get("phase") == "built":
            run_results = read_run_results(workspace / "target" / "run_results.json", secrets=secrets)
            if run_results is not None:
                text, nodes = run_results
                (workspace / RUN_RESULTS_FILE).write_text(text)

        error = self._error(guard, outcome.returncode, outcome.timed_out, nodes)
        failures = tuple(node for node in nodes if node.status in FAILED_STATUSES)
        success = error is None and bool(nodes) and all(node.status in PASSED_STATUSES for node in nodes)
        result = ValidationResult(
            success=success,
            select=select,
            target_database=clone,
            attempt=workspace.name,
            nodes=tuple(nodes),
            failures=failures,
            elapsed_seconds=round(time.monotonic() - started, 3),
            logs_excerpt=truncate(outcome.output, LOG_EXCERPT_LIMIT),
            files_hash=files_hash,
            source_rewrites=tuple(guard.get("source_rewrites", ())),
            error=error,
            notes=tuple(guard.get("notes", ())),
        )
        (workspace / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True))
        log.info(
            "validation %s of %s: %s (%d nodes, %d failures, %.1fs)",
            workspace.name,
            sandbox.incident_id,
            "passed" if success else "failed",
            len(nodes),
            len(failures),
            result.elapsed_seconds,
        )
        return result

    def _error(
        self, guard: Mapping[str, Any], exit_code: int | None, timed_out: bool, nodes: Sequence[NodeStatus]
    ) -> str | None:
        if timed_out:
            return f"dbt did not finish within {self.timeout:.0f}s; it was stopped"
        phase = guard.get("phase")
        if phase is None:
            return f"the dbt process exited with code {exit_code} before reporting; see {LOG_FILE}"
        if phase != "built":
            return f"{phase}: {guard.get('reason', '')}".strip()
        if guard.get("reason"):
            return str(guard["reason"])
        if not nodes:
            return "dbt built nothing: the selector matched no nodes"
        return None
