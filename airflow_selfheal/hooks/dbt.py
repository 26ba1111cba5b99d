"""
Validate a sandboxed fix with ``dbt build`` against the incident's clone, never against production.

:meth:`DbtValidationHook.build` copies the sandbox's project into a fresh attempt folder
(``<run>/validation/attempt-<n>``), writes a ``profiles.yml`` there from the Airflow Snowflake connection with
``database`` set to the clone, and runs ``dbt build --select <select>`` (tests included) in a child Python process.
The result is parsed from ``target/run_results.json`` into a :class:`ValidationResult`.

**Why a child process, not dbt in-process.** dbt keeps its state in process globals: the adapter registry
(``dbt.adapters.factory.FACTORY``, one adapter per type, reset at the start of every ``dbtRunner.invoke``), the
global flags and the event logger. Two validations, or a validation and a cosmos ``DBT_RUNNER`` task, in one
process would reset and share each other's adapter and connections. ``env_var()`` also reads the process
environment, so in-process the password would have to sit in the Airflow worker's ``os.environ``. The child gets a
clean dbt state, the password only in its own environment (``SELFHEAL_DBT_PASSWORD``, referenced from the profile
with ``env_var()``; never written to disk) and a timeout after which its process group is killed. Starting Python
with dbt costs seconds, so the child does everything in one start: it parses, checks, then builds from the parsed
manifest with ``dbtRunner(manifest=...)``. This module stays importable without Airflow for that reason.

**Why production cannot be written.** Before dbt starts: the target must be a selfheal clone name and must not be
the connection's (production) database, and the written profile is read back and must name the clone. In the
child, after parsing and before building: every model, seed, snapshot and test must resolve to the clone (a model
with its own ``database`` config is refused), and no hook may name the production database. Sources are read
only, but a source whose ``database`` is set explicitly to production (``database: DEMO`` in the demo's
``_sources.yml``) would make the clone build read production data; the attempt's *copy* of that YAML is rewritten
to point at the clone, the sandbox itself is left as is (the rewrite is not part of the fix), and the rewrite is
recorded in the result as evidence.

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

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.clone_sql import parse_clone_name, scan_prod_references
from airflow_selfheal.core.identifiers import normalize_identifier
from airflow_selfheal.core.redaction import redact, truncate
from airflow_selfheal.hooks.sandbox import Sandbox

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

log = logging.getLogger(__name__)

PASSWORD_ENV = "SELFHEAL_DBT_PASSWORD"  # noqa: S105 - the name of the variable, not a password
PASSWORD_REFERENCE = "{{ env_var('" + PASSWORD_ENV + "') }}"
PROFILE_NAME = "selfheal_validation"
TARGET_NAME = "selfheal_clone"
DEFAULT_TIMEOUT = 3600.0
MESSAGE_LIMIT = 2000
LOG_EXCERPT_LIMIT = 6000
#: Node statuses that do not fail a build (``warn``: dbt exits 0).
PASSED_STATUSES = frozenset({"success", "pass", "warn"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
#: Resource types that create or write a relation when built (tests write when ``store_failures`` is on).
#: What the validation child may run: ``build`` validates a fix, ``run`` fills a clone's views from the project.
DBT_COMMANDS = frozenset({"build", "run"})
WRITING_TYPES = frozenset({"model", "seed", "snapshot", "test"})
_EXCLUDED_FROM_SCAN = frozenset({"target", "dbt_packages", "logs"})
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Files of an attempt folder; names starting with "." stay local (see Sandbox.publish).
REQUEST_FILE = ".request.json"
RAW_OUTPUT_FILE = ".child-output"
GUARD_FILE = "guard.json"
LOG_FILE = "dbt.log"
RUN_RESULTS_FILE = "run_results.json"
RESULT_FILE = "result.json"


class ValidationRefused(ValueError):
    """Validation would not be isolated from production; nothing was run. The message says why."""


# ---------------------------------------------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeStatus:
    """
    One node of a ``dbt build`` as ``run_results.json`` reports it.

    :param unique_id: e.g. ``model.shop.stg_orders``.
    :param resource_type: the first part of ``unique_id``.
    :param status: ``success``, ``pass``, ``warn``, ``error``, ``fail``, ``skipped``...
    :param message: dbt's message, redacted and truncated; None when dbt gave none.
    :param execution_time: seconds.
    """

    unique_id: str
    resource_type: str
    status: str
    message: str | None
    execution_time: float

    def to_dict(self) -> dict[str, Any]:
        """:return: a JSON-compatible dict."""
        return {
            "unique_id": self.unique_id,
            "resource_type": self.resource_type,
            "status": self.status,
            "message": self.message,
            "execution_time": self.execution_time,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeStatus:
        """
        Rebuild from :meth:`to_dict` output.

        :param data: the dict.
        :return: the node status.
        """
        return cls(
            unique_id=str(data["unique_id"]),
            resource_type=str(data["resource_type"]),
            status=str(data["status"]),
            message=None if data.get("message") is None else str(data["message"]),
            execution_time=float(data.get("execution_time") or 0.0),
        )


@dataclass(frozen=True)
class ValidationResult:
    """
    The outcome of one validation attempt.

    .. code-block:: python

        if not result.success:
            print(result.error or [(f.unique_id, f.message) for f in result.failures])
        elif not result.is_current(sandbox.files_hash()):
            ...  # the files changed after validation: validate again

    :param success: True only if dbt ran, every node passed (``success``/``pass``/``warn``) and at least one node
        ran.
    :param select: the selector built.
    :param target_database: the clone.
    :param attempt: the attempt folder's name, e.g. ``attempt-1``.
    :param nodes: every node dbt reported.
    :param failures: the nodes with status ``error``, ``fail`` or ``runtime error``.
    :param elapsed_seconds: wall time of the whole attempt.
    :param logs_excerpt: the head and tail of dbt's output, redacted.
    :param files_hash: :meth:`Sandbox.files_hash` of the files validated.
    :param source_rewrites: the source definitions pointed from production at the clone in the attempt's copy.
    :param error: why the build did not run or did not finish (refused, parse error, timeout), or None.
    :param notes: anything else found while checking isolation.
    """

    success: bool
    select: str
    target_database: str
    attempt: str
    nodes: tuple[NodeStatus, ...]
    failures: tuple[NodeStatus, ...]
    elapsed_seconds: float
    logs_excerpt: str
    files_hash: str
    source_rewrites: tuple[Mapping[str, str], ...] = ()
    error: str | None = None
    notes: tuple[str, ...] = field(default=())

    def is_current(self, files_hash: str) -> bool:
        """
        Whether this result still stands for the sandbox's files.

        :param files_hash: the sandbox's current :meth:`Sandbox.files_hash`.
        :return: True if the validation passed on exactly these files.
        """
        return self.success and self.files_hash == files_hash

    @property
    def error_signature(self) -> str:
        """
        A stable hash of what failed and how; the same signature twice means the fix loop is stuck.

        :return: 16 hex digits; the clone name, case and whitespace do not change it.
        """
        parts = [self.error or ""]
        for failure in sorted(self.failures, key=lambda node: node.unique_id):
            message = (failure.message or "").replace(self.target_database, "<clone>")
            parts.append(f"{failure.unique_id}|{failure.status}|{' '.join(message.lower().split())}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """:return: a JSON-compatible dict for XCom and the evidence."""
        return {
            "success": self.success,
            "select": self.select,
            "target_database": self.target_database,
            "attempt": self.attempt,
            "nodes": [node.to_dict() for node in self.nodes],
            "failures": [node.to_dict() for node in self.failures],
            "elapsed_seconds": self.elapsed_seconds,
            "logs_excerpt": self.logs_excerpt,
            "files_hash": self.files_hash,
            "source_rewrites": [dict(item) for item in self.source_rewrites],
            "error": self.error,
            "notes": list(self.notes),
            "error_signature": self.error_signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationResult:
        """
        Rebuild from :meth:`to_dict` output.

        :param data: the dict.
        :return: the result.
        """
        return cls(
            success=bool(data["success"]),
            select=str(data["select"]),
            target_database=str(data["target_database"]),
            attempt=str(data["attempt"]),
            nodes=tuple(NodeStatus.from_dict(node) for node in data["nodes"]),
            failures=tuple(NodeStatus.from_dict(node) for node in data["failures"]),
            elapsed_seconds=float(data["elapsed_seconds"]),
            logs_excerpt=str(data["logs_excerpt"]),
            files_hash=str(data["files_hash"]),
            source_rewrites=tuple(dict(item) for item in data.get("source_rewrites", ())),
            error=data.get("error"),
            notes=tuple(data.get("notes", ())),
        )


def parse_run_results(data: Mapping[str, Any], *, extra_secrets: Iterable[str] = ()) -> list[NodeStatus]:
    """
    The nodes of a ``run_results.json``, with messages redacted and truncated.

    :param data: the loaded ``run_results.json``.
    :param extra_secrets: values to redact wherever they appear (e.g. the connection password).
    :return: one status per result, in dbt's order.
    """
    secrets = tuple(extra_secrets)
    nodes = []
    for item in data.get("results") or ():
        unique_id = str(item.get("unique_id", ""))
        message = item.get("message")
        if message is not None:
            message = truncate(redact(_ANSI.sub("", str(message)), extra_secrets=secrets), MESSAGE_LIMIT)
        nodes.append(
            NodeStatus(
                unique_id=unique_id,
                resource_type=unique_id.split(".", 1)[0],
                status=str(item.get("status", "")),
                message=message,
                execution_time=float(item.get("execution_time") or 0.0),
            )
        )
    return nodes


# ---------------------------------------------------------------------------------------------------------------
# Profile and isolation checks (pure; unit-tested)
# ---------------------------------------------------------------------------------------------------------------


def check_target(target_database: str, prod_database: str | None) -> tuple[str, str]:
    """
    Refuse a validation target that is production or not a selfheal clone.

    :param target_database: the database dbt will build into, as written in SQL.
    :param prod_database: the production database (the connection's), as written in SQL.
    :return: both in stored form, ``(clone, prod)``.
    :raises ValidationRefused: if the production database is unknown, the target is production, or the target
        is not a clone name made by :func:`~airflow_selfheal.core.clone_sql.clone_name`.
    """
    if not prod_database:
        raise ValidationRefused(
            "cannot tell the production database: the connection names none; pass prod_database"
        )
    clone, prod = normalize_identifier(target_database), normalize_identifier(prod_database)
    if clone == prod:
        raise ValidationRefused(
            f"refusing to validate in {clone}: it is the production database named by the connection"
        )
    if parse_clone_name(clone) is None:
        raise ValidationRefused(
            f"refusing to validate in {clone}: it is not a selfheal clone name "
            "(<SOURCE>__SELFHEAL_<INCIDENT>__<YYYYMMDDTHHMMSSZ>)"
        )
    return clone, prod


def validation_profile(
    conn_params: Mapping[str, Any], *, clone_database: str, threads: int = 4
) -> dict[str, Any]:
    """
    A dbt ``profiles.yml`` document for the clone, from ``SelfhealSnowflakeHook.conn_params``.

    The password is not in it: ``password`` is :data:`PASSWORD_REFERENCE`, read by dbt from the child's
    environment.

    :param conn_params: the connection's connector arguments (account, user, warehouse, role, schema, host, port,
        protocol...).
    :param clone_database: the clone, stored form.
    :param threads: dbt threads.
    :return: ``{PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: {...}}}}``.
    :raises ValidationRefused: for key-pair or external-browser/OAuth connections, or one without a user,
        account or schema.
    """
    if conn_params.get("private_key") or conn_params.get("private_key_file"):
        raise ValidationRefused(
            "validation supports password authentication only; the connection uses a key pair"
        )
    authenticator = str(conn_params.get("authenticator") or "snowflake").lower()
    if authenticator != "snowflake":
        raise ValidationRefused(
            f"validation supports password authentication only; the connection uses {authenticator!r}"
        )
    for key in ("account", "user", "schema"):
        if not conn_params.get(key):
            raise ValidationRefused(f"the Snowflake connection has no {key}; dbt needs one")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    account = str(conn_params["account"])
    region = conn_params.get("region")
    if region and f".{region}" not in account:
        account = f"{account}.{region}"
    output: dict[str, Any] = {
        "type": "snowflake",
        "account": account,
        "user": str(conn_params["user"]),
        "password": PASSWORD_REFERENCE,
        "database": clone_database,
        "schema": str(conn_params["schema"]),
        "threads": threads,
        "client_session_keep_alive": False,
    }
    for key in ("warehouse", "role", "host", "protocol"):
        if conn_params.get(key):
            output[key] = str(conn_params[key])
    if conn_params.get("port") not in (None, ""):
        output["port"] = int(conn_params["port"])
    return {PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}


def check_profile(
    path: Path, *, clone_database: str, prod_database: str, password: str | None = None
) -> None:
    """
    Read a written profile back and refuse it unless every output builds into the clone, with no password.

    :param path: the ``profiles.yml``.
    :param clone_database: the clone, stored form.
    :param prod_database: the production database, stored form.
    :param password: the connection's password, which must not appear in the file.
    :raises ValidationRefused: naming what is wrong.
    """
    text = path.read_text()
    if password and len(password) >= 4 and password in text:
        raise ValidationRefused(f"{path} contains the connection password; refusing to use it")
    data = yaml.safe_load(text)
    try:
        profile = data[PROFILE_NAME]
        outputs = profile["outputs"]
        selected = outputs[profile["target"]]
    except (TypeError, KeyError) as exc:
        raise ValidationRefused(f"{path} is not a {PROFILE_NAME} profile ({exc!r})") from None
    if profile["target"] != TARGET_NAME or set(outputs) != {TARGET_NAME} or selected is None:
        raise ValidationRefused(f"{path} must hold exactly the output {TARGET_NAME!r}")
    database = normalize_identifier(str(selected.get("database", "")) or '""')
    if database == prod_database or database != clone_database:
        raise ValidationRefused(
            f"{path} builds into {database!r}, not the clone {clone_database!r}; refusing to run dbt with it"
        )
    if selected.get("password") != PASSWORD_REFERENCE:
        raise ValidationRefused(f"{path}: the password must be the reference {PASSWORD_REFERENCE!r}")


def _same_database(value: Any, database: str) -> bool:
    """Whether a database as written in YAML or the manifest is ``database`` (stored form)."""
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        return normalize_identifier(value) == database or value.strip().upper() == database.upper()
    except ValueError:
        return False


def rewrite_source_databases(
    project_dir: Path,
    *,
    prod_database: str,
    clone_database: str,
    only: Iterable[tuple[str, str]] | None = None,
) -> list[dict[str, str]]:
    """
    Point sources that read production at the clone, in a throwaway copy of a project.

    Without ``only``, every source whose ``database`` is written literally as the production database is
    rewritten. With ``only``, exactly the given ``(file, source name)`` pairs are (used after parsing, for values
    dbt rendered from Jinja). The YAML is re-dumped, so comments are lost: never use this on the sandbox or the
    live project.

    :param project_dir: the copy.
    :param prod_database: stored form.
    :param clone_database: stored form.
    :param only: project-relative YAML path and source name pairs.
    :return: one ``{"file", "source", "from", "to"}`` per rewrite.
    """
    wanted = None if only is None else set(only)
    rewrites: list[dict[str, str]] = []
    for location in sorted(project_dir.rglob("*")):
        relative = location.relative_to(project_dir)
        if location.suffix not in (".yml", ".yaml") or not location.is_file():
            continue
        if relative.parts[0] in _EXCLUDED_FROM_SCAN or ".git" in relative.parts:
            continue
        text = location.read_text(encoding="utf-8")
        if "sources" not in text:
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # dbt reports a broken YAML file itself, with its line
        if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
            continue
        changed = False
        for source in data["sources"]:
            if not isinstance(source, dict):
                continue
            name = str(source.get("name", ""))
            current = source.get("database")
            if wanted is None:
                hit = _same_database(current, prod_database)
            else:
                hit = (relative.as_posix(), name) in wanted
            if hit:
                source["database"] = clone_database
                rewrites.append(
                    {"file": relative.as_posix(), "source": name, "from": str(current), "to": clone_database}
                )
                changed = True
        if changed:
            location.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return rewrites


def isolation_problems(summary: Mapping[str, Any], *, clone_database: str, prod_database: str) -> list[str]:
    """
    What in a parsed project would read production sources or write outside the clone.

    :param summary: ``{"sources": [...], "nodes": [...]}`` as made from the manifest in the child: sources with
        ``unique_id`` and ``database``; nodes with ``unique_id``, ``resource_type``, ``database``, ``materialized``
        and ``hooks`` (the SQL of their pre/post hooks, or of the project hook an ``operation`` node is).
    :param clone_database: stored form.
    :param prod_database: stored form.
    :return: one sentence per problem; empty when the build is isolated.
    """
    problems = []
    for source in summary.get("sources", ()):
        if _same_database(source.get("database"), prod_database):
            problems.append(f"{source['unique_id']} still reads the production database {prod_database}")
    for node in summary.get("nodes", ()):
        resource_type = node.get("resource_type")
        writes = resource_type in WRITING_TYPES and node.get("materialized") != "ephemeral"
        if writes and not _same_database(node.get("database"), clone_database):
            problems.append(f"{node['unique_id']} would build into {node.get('database')!r}, not the clone")
        for sql in node.get("hooks", ()):
            references = scan_prod_references(str(sql), prod_database).references
            if references:
                problems.append(f"{node['unique_id']} has a hook naming production: {', '.join(references)}")
    return problems


# ---------------------------------------------------------------------------------------------------------------
# The hook (parent side)
# ---------------------------------------------------------------------------------------------------------------


class DbtValidationHook:
    """
    Run ``dbt build`` for a sandbox against a clone, isolated from production; see the module docstring.

    A plain class rather than an Airflow ``BaseHook``: it owns no connection of its own (it reads the Snowflake
    connection through :class:`~airflow_selfheal.hooks.snowflake.SelfhealSnowflakeHook`), and this module is also
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
        clone, prod = check_target(target_database, prod_database or connection_database)
        if prod_database and connection_database:
            check_target(target_database, connection_database)  # the connection's database is refused too
        password = str(conn_params.get("password") or "")
        profile = validation_profile(conn_params, clone_database=clone, threads=threads)

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
        check_profile(profile_path, clone_database=clone, prod_database=prod, password=password)

        request = {
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
        exit_code, timed_out = self._run_child(workspace, password)

        output = (workspace / RAW_OUTPUT_FILE).read_text(errors="replace")
        output = redact(_ANSI.sub("", output), extra_secrets=[password])
        (workspace / LOG_FILE).write_text(output)
        (workspace / RAW_OUTPUT_FILE).unlink()
        guard: dict[str, Any] = {}
        if (workspace / GUARD_FILE).is_file():
            guard = json.loads((workspace / GUARD_FILE).read_text())
        nodes: list[NodeStatus] = []
        run_results = workspace / "target" / "run_results.json"
        if guard.get("phase") == "built" and run_results.is_file():
            text = redact(run_results.read_text(), extra_secrets=[password])
            (workspace / RUN_RESULTS_FILE).write_text(text)
            nodes = parse_run_results(json.loads(text), extra_secrets=[password])

        error = self._error(guard, exit_code, timed_out, nodes)
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
            logs_excerpt=truncate(output, LOG_EXCERPT_LIMIT),
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

    def _run_child(self, workspace: Path, password: str) -> tuple[int | None, bool]:
        """Run this module as the dbt child; return (exit code, timed out)."""
        env = {
            **os.environ,
            PASSWORD_ENV: password,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_USE_COLORS": "False",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
        command = [sys.executable, "-m", "airflow_selfheal.hooks.dbt", str(workspace / REQUEST_FILE)]
        with (workspace / RAW_OUTPUT_FILE).open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=workspace,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                return process.wait(timeout=self.timeout), False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return None, True

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


# ---------------------------------------------------------------------------------------------------------------
# The child process: parse, check isolation, build
# ---------------------------------------------------------------------------------------------------------------


def _scrub_dbt_flag_environment(cli: Any) -> None:
    """Drop every dbt flag set through the environment (``DBT_PROFILES_DIR``, ``DBT_DEFER``...) in the child."""
    names = set()
    commands = [cli, *getattr(cli, "commands", {}).values()]
    for command in commands:
        for param in getattr(command, "params", ()):
            envvar = getattr(param, "envvar", None)
            for name in [envvar] if isinstance(envvar, str) else list(envvar or ()):
                names.add(name)
    for name in names:
        os.environ.pop(name, None)
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"


def _summary(manifest: Any) -> dict[str, Any]:
    """The parts of a parsed dbt ``Manifest`` that :func:`isolation_problems` checks."""

    def text(value: Any) -> str:
        return str(getattr(value, "value", value))

    sources = [
        {
            "unique_id": source.unique_id,
            "database": source.database,
            "source_name": source.source_name,
            "file": source.original_file_path,
            "package": source.package_name,
        }
        for source in manifest.sources.values()
    ]
    nodes = []
    for node in manifest.nodes.values():
        config = node.config
        hooks = [hook.sql for hook in [*getattr(config, "pre_hook", ()), *getattr(config, "post_hook", ())]]
        if text(node.resource_type) == "operation":
            hooks.append(node.raw_code)
        nodes.append(
            {
                "unique_id": node.unique_id,
                "resource_type": text(node.resource_type),
                "database": node.database,
                "materialized": getattr(config, "materialized", None),
                "hooks": hooks,
            }
        )
    return {"sources": sources, "nodes": nodes}


def _guarded_build(request: Mapping[str, Any]) -> dict[str, Any]:
    from dbt.cli.main import cli, dbtRunner

    _scrub_dbt_flag_environment(cli)
    project = Path(request["project_dir"])
    clone, prod = str(request["clone_database"]), str(request["prod_database"])
    common = [
        "--project-dir", str(project),
        "--profiles-dir", str(request["profiles_dir"]),
        "--profile", PROFILE_NAME,
        "--target", TARGET_NAME,
        "--target-path", str(request["target_path"]),
        "--log-path", str(request["log_path"]),
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]  # fmt: skip
    report: dict[str, Any] = {"phase": "parse", "source_rewrites": [], "notes": []}
    report["source_rewrites"] += rewrite_source_databases(project, prod_database=prod, clone_database=clone)

    def parse() -> Any:
        result = dbtRunner().invoke(["parse", *common])
        if not result.success:
            report.update(
                phase="parse_failed", reason=truncate(str(result.exception or "dbt parse failed"), 4000)
            )
            return None
        return result.result

    manifest = parse()
    if manifest is None:
        return report
    summary = _summary(manifest)
    project_name = str((yaml.safe_load((project / "dbt_project.yml").read_text()) or {}).get("name", ""))
    leftovers = {
        (source["file"], source["source_name"])
        for source in summary["sources"]
        if _same_database(source["database"], prod) and source["package"] == project_name
    }
    if leftovers:
        report["source_rewrites"] += rewrite_source_databases(
            project, prod_database=prod, clone_database=clone, only=leftovers
        )
        manifest = parse()
        if manifest is None:
            return report
        summary = _summary(manifest)
    problems = isolation_problems(summary, clone_database=clone, prod_database=prod)
    if problems:
        report.update(phase="refused", reason="; ".join(problems[:20]))
        return report
    report["checked_nodes"] = len(summary["nodes"]) + len(summary["sources"])
    hooks = sum(len(node["hooks"]) for node in summary["nodes"])
    if hooks:
        report["notes"].append(
            f"{hooks} hook(s) were checked for explicit references to {prod}; "
            "SQL a hook builds at run time (e.g. from a macro) cannot be checked before it runs"
        )
    report["phase"] = "building"
    verb = str(request.get("command") or "build")
    if verb not in DBT_COMMANDS:
        report.update(phase="refused", reason=f"unknown dbt command {verb!r}")
        return report
    command = [verb, "--select", str(request["select"]), "--threads", str(request["threads"]), *common]
    result = dbtRunner(manifest=manifest).invoke(command)
    report["phase"] = "built"
    if result.exception is not None:
        report["reason"] = truncate(f"dbt build raised: {result.exception}", 4000)
    return report


def _child_main(argv: Sequence[str]) -> int:
    """Entry point of the dbt child: ``python -m airflow_selfheal.hooks.dbt <request.json>``."""
    request = json.loads(Path(argv[0]).read_text())
    report_path = Path(request["report_path"])
    try:
        report = _guarded_build(request)
    except Exception as exc:
        report = {"phase": "crashed", "reason": truncate(f"{type(exc).__name__}: {exc}", 4000)}
        report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
        raise
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
