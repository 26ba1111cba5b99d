"""
Run dbt in a child process: its own process group, a timeout that kills the whole group, redacted output.

One implementation for every dbt run the package makes, the validation in a clone and the production re-run
alike (:class:`~airflow_selfheal.hooks.dbt.validation.DbtValidationHook`,
:class:`~airflow_selfheal.hooks.dbt.production.DbtProductionHook`):

* the child is ``python -m airflow_selfheal.hooks.dbt <request.json>`` (:mod:`~airflow_selfheal.hooks.dbt.child`),
  started with ``start_new_session=True`` so that it leads a process group of its own;
* on timeout, or when the waiting task is itself interrupted (Airflow stopping the task), the whole group is sent
  ``SIGKILL`` with :func:`os.killpg`, so nothing the child started (a grandchild) outlives it. A process that
  leaves the group on purpose (``setsid``) cannot be reached this way;
* the password reaches dbt only through the child's environment (:data:`~.profiles.PASSWORD_ENV`);
* the child's output goes to an unnamed temporary file, never to a named file on disk, and is returned with
  colour codes stripped and secrets redacted, the password and the connection's other secrets
  (:func:`~airflow_selfheal.core.redaction.secrets_of_connection`) included wherever they appear.

.. code-block:: python

    secrets = secrets_of_connection(conn_params)
    outcome = run_dbt_child(work / REQUEST_FILE, cwd=work, password=password, timeout=600, secrets=secrets)
    if outcome.timed_out:
        ...
    excerpt = dbt_log_excerpt(outcome.output)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_selfheal.core.redaction import redact, redact_obj
from airflow_selfheal.hooks.dbt.profiles import PASSWORD_ENV
from airflow_selfheal.hooks.dbt.results import ANSI_ESCAPE, NodeStatus, parse_run_results

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

#: The module the child runs (``python -m``); it must start without importing Airflow.
CHILD_MODULE = "airflow_selfheal.hooks.dbt"
#: The request the parent writes for the child, in the run's folder; names starting with "." stay local.
REQUEST_FILE = ".request.json"
#: What the validation child may run: ``build`` validates a fix, ``run`` fills a clone's views from the project.
DBT_COMMANDS = frozenset({"build", "run"})
#: What the production child may run: ``build`` re-runs production, ``parse`` reads a checkout's manifest.
PRODUCTION_COMMANDS = frozenset({"build", "parse"})
#: Characters of dbt's output kept by :func:`dbt_log_excerpt`.
EXCERPT_LIMIT = 4_000


@dataclass(frozen=True)
class ChildOutcome:
    """
    How a child process ended.

    :param returncode: its exit code; None when it was killed on timeout.
    :param timed_out: whether the timeout ran out and the process group was killed.
    :param output: stdout and stderr together, colour codes stripped, secrets redacted.
    :param elapsed_seconds: wall time from start to exit (or kill).
    """

    returncode: int | None
    timed_out: bool
    output: str
    elapsed_seconds: float


def dbt_environment(password: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """
    The environment of a dbt child: ``base`` (default ``os.environ``), the password, no telemetry, no colours.

    :param password: the connection's password, read by the profile through :data:`~.profiles.PASSWORD_ENV`.
    :param base: the variables to start from.
    :return: a new dict.
    """
    return {
        **(os.environ if base is None else base),
        PASSWORD_ENV: password,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_USE_COLORS": "False",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group (the child is not reaped yet, so its id is still the group's)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_in_process_group(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float | None,
    secrets: Iterable[str] = (),
) -> ChildOutcome:
    """
    Run ``command`` as the leader of a new session and process group; kill the group on timeout.

    :param command: the argv, no shell.
    :param cwd: the working directory.
    :param env: the complete environment.
    :param timeout: seconds before the group is killed; None waits for ever.
    :param secrets: values redacted from the output wherever they appear (e.g. the connection password).
    :return: the outcome; the output is read back whatever the exit.
    :raises BaseException: whatever interrupted the wait (e.g. the task being stopped), after the group was
        killed.
    """
    started = time.monotonic()
    with tempfile.TemporaryFile(prefix="selfheal-dbt-output-") as raw:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=raw,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            returncode: int | None = process.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            _kill_group(process)
            returncode, timed_out = None, True
        except BaseException:
            _kill_group(process)
            raise
        elapsed = time.monotonic() - started
        raw.seek(0)
        output = raw.read().decode("utf-8", errors="replace")
    output = redact(ANSI_ESCAPE.sub("", output), extra_secrets=list(secrets))
    return ChildOutcome(returncode=returncode, timed_out=timed_out, output=output, elapsed_seconds=elapsed)


def run_dbt_child(
    request_path: Path, *, cwd: Path, password: str, timeout: float | None, secrets: Iterable[str] = ()
) -> ChildOutcome:
    """
    Run the dbt child (``python -m airflow_selfheal.hooks.dbt <request>``) with :func:`run_in_process_group`.

    :param request_path: the request the child reads (see :mod:`~airflow_selfheal.hooks.dbt.child`).
    :param cwd: the working directory (the run's folder).
    :param password: the connection's password: in the child's environment only, and redacted from the output.
    :param timeout: seconds before the child and everything it started are killed.
    :param secrets: the connection's other secrets, redacted from the output too.
    :return: the outcome.
    """
    command = [sys.executable, "-m", CHILD_MODULE, str(request_path)]
    return run_in_process_group(
        command, cwd=cwd, env=dbt_environment(password), timeout=timeout, secrets=[password, *secrets]
    )


def read_run_results(path: Path, *, secrets: Iterable[str] = ()) -> tuple[str, list[NodeStatus]] | None:
    """
    A ``run_results.json`` redacted, and its nodes.

    The document is parsed first and each of its strings redacted
    (:func:`~airflow_selfheal.core.redaction.redact_obj`): redacting its text instead could cut through the JSON
    and leave it unreadable.

    :param path: the file dbt wrote.
    :param secrets: values to redact wherever they appear, e.g.
        :func:`~airflow_selfheal.core.redaction.secrets_of_connection`.
    :return: ``(redacted text, nodes)``, or None when dbt wrote no such file.
    :raises ValueError: when the file is not JSON.
    """
    if not path.is_file():
        return None
    extra = list(secrets)
    data = redact_obj(json.loads(path.read_text()), extra_secrets=extra)
    return json.dumps(data, indent=2), parse_run_results(data, extra_secrets=extra)


def dbt_log_excerpt(output: str, limit: int = EXCERPT_LIMIT) -> str:
    """
    The part of dbt's output a person needs: from its ``Completed with … errors`` summary, else the tail.

    :param output: dbt's output (already redacted, see :func:`run_in_process_group`).
    :param limit: the most characters returned.
    :return: at most ``limit`` characters.
    """
    if limit <= 0:
        return ""
    start = output.rfind("Completed with")
    return output[start : start + limit] if start >= 0 else output[-limit:]
