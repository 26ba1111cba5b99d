"""
The dbt child process: ``python -m airflow_selfheal.hooks.dbt <request.json>``, started by the runner.

**Why a child process, not dbt in-process.** dbt keeps its state in process globals: the adapter registry
(``dbt.adapters.factory.FACTORY``, one adapter per type, reset at the start of every ``dbtRunner.invoke``), the
global flags and the event logger. Two validations, or a validation and a cosmos ``DBT_RUNNER`` task, in one
process would reset and share each other's adapter and connections. ``env_var()`` also reads the process
environment, so in-process the password would have to sit in the Airflow worker's ``os.environ``. The child gets a
clean dbt state, the password only in its own environment and a timeout after which its process group is killed
(:mod:`~airflow_selfheal.hooks.dbt.runner`). Starting Python with dbt costs seconds, so a validation child does
everything in one start: it parses, checks, then builds from the parsed manifest with ``dbtRunner(manifest=...)``.

This module, and the package ``__init__`` Python imports before it, import neither Airflow nor dbt at module
level: the child must start fast and must not read the worker's Airflow configuration.

The request is JSON. Its ``kind`` says which profile the child runs with; the request cannot name one itself:

* ``validation`` (the default): the guarded build of
  :class:`~airflow_selfheal.hooks.dbt.validation.DbtValidationHook` with the validation profile and target. After
  parsing and before building, sources that still read production are pointed at the clone in the attempt's copy
  and :func:`~airflow_selfheal.hooks.dbt.isolation.isolation_problems` must find nothing. The report says how far
  it got (``phase``); the exit code is 0 whatever dbt found.
* ``production``: ``dbt build`` or ``dbt parse`` of
  :class:`~airflow_selfheal.hooks.dbt.production.DbtProductionHook` with the production profile and target. The
  exit code follows the dbt CLI: 0 success, 1 nodes failed, 2 dbt raised.

Either way every dbt flag set through the environment (``DBT_PROFILES_DIR``, ``DBT_TARGET``, ``DBT_DEFER``...) is
dropped first, so the worker's environment cannot point dbt at another profile, target or state.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.redaction import truncate
from airflow_selfheal.hooks.dbt.isolation import isolation_problems, rewrite_source_databases, same_database
from airflow_selfheal.hooks.dbt.profiles import PROD_PROFILE_NAME, PROD_TARGET_NAME, PROFILE_NAME, TARGET_NAME
from airflow_selfheal.hooks.dbt.runner import CHILD_MODULE, DBT_COMMANDS, PRODUCTION_COMMANDS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

KINDS = ("validation", "production")
USAGE = f"""\
usage: python -m {CHILD_MODULE} REQUEST.json

Run dbt as the request says, in this process, and write a JSON report to the request's report_path.
Started by airflow_selfheal.hooks.dbt.runner; not meant to be run by hand.
"""


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


def _common_flags(request: Mapping[str, Any], profile: str, target: str) -> list[str]:
    return [
        "--project-dir", str(request["project_dir"]),
        "--profiles-dir", str(request["profiles_dir"]),
        "--profile", profile,
        "--target", target,
        "--target-path", str(request["target_path"]),
        "--log-path", str(request["log_path"]),
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
    ]  # fmt: skip


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
    """Parse, point production sources at the clone, check isolation, then build; the report of how far."""
    from dbt.cli.main import cli, dbtRunner

    _scrub_dbt_flag_environment(cli)
    project = Path(request["project_dir"])
    clone, prod = str(request["clone_database"]), str(request["prod_database"])
    common = _common_flags(request, PROFILE_NAME, TARGET_NAME)
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
        if same_database(source["database"], prod) and source["package"] == project_name
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


def _production_run(request: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """``dbt build`` or ``dbt parse`` with the production profile; the report and a dbt-CLI exit code."""
    verb = str(request.get("command") or "")
    if verb not in PRODUCTION_COMMANDS:
        return {"phase": "refused", "reason": f"unknown production dbt command {verb!r}"}, 2
    from dbt.cli.main import cli, dbtRunner

    _scrub_dbt_flag_environment(cli)
    command = [verb]
    if verb == "build":
        command += ["--select", *str(request["select"]).split(), "--threads", str(request["threads"])]
    else:
        command.append("--no-partial-parse")  # the manifest of exactly these files, whatever target/ holds
    result = dbtRunner().invoke([*command, *_common_flags(request, PROD_PROFILE_NAME, PROD_TARGET_NAME)])
    report: dict[str, Any] = {
        "phase": "built" if verb == "build" else "parsed",
        "success": bool(result.success),
    }
    if result.exception is not None:
        report["reason"] = truncate(f"dbt {verb} raised: {result.exception}", 4000)
        return report, 2
    return report, 0 if result.success else 1


def main(argv: Sequence[str]) -> int:
    """
    Entry point of the dbt child: ``python -m airflow_selfheal.hooks.dbt <request.json>``.

    :param argv: the arguments after the module name.
    :return: the exit code (see the module docstring).
    """
    if list(argv[:1]) in (["-h"], ["--help"]):
        sys.stdout.write(USAGE)
        return 0
    if len(argv) != 1:
        sys.stderr.write(USAGE)
        return 2
    request = json.loads(Path(argv[0]).read_text())
    report_path = Path(request["report_path"])
    kind = str(request.get("kind") or "validation")
    exit_code = 0
    try:
        if kind == "validation":
            report = _guarded_build(request)
        elif kind == "production":
            report, exit_code = _production_run(request)
        else:
            report, exit_code = {"phase": "refused", "reason": f"unknown request kind {kind!r}"}, 2
    except Exception as exc:
        report = {"phase": "crashed", "reason": truncate(f"{type(exc).__name__}: {exc}", 4000)}
        report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
        raise
    report_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str))
    return exit_code
