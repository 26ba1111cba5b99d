"""``airflow-selfheal``: drift checks and baselines, incidents, offline triage, audit trails, artifact recovery.

Connections and the artifacts root come from Airflow's configuration, exactly as in tasks.
Exit codes: 0 fine, 1 drift detected (``drift check``), 2 bad input or an unreadable record.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def cmd_quarantine(args: argparse.Namespace) -> int:
    """Move an unreadable record aside."""
    from airflow_selfheal.cli.output import emit
    from airflow_selfheal.hooks.artifacts import ArtifactStore

    emit(f"moved to {ArtifactStore().quarantine(args.path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="airflow-selfheal", description=__doc__.splitlines()[0])
    groups = parser.add_subparsers(dest="group", required=True)

    from airflow_selfheal.cli.audit import add_audit_commands
    from airflow_selfheal.cli.drift import add_drift_commands
    from airflow_selfheal.cli.incidents import add_incident_commands

    add_drift_commands(groups)
    add_incident_commands(groups)
    add_audit_commands(groups)

    artifacts = groups.add_parser("artifacts", help="stored records").add_subparsers(
        dest="command", required=True
    )
    quarantine = artifacts.add_parser("quarantine", help="move an unreadable record aside")
    quarantine.add_argument("path", help="path under the artifacts root, as the error message names it")
    quarantine.set_defaults(func=cmd_quarantine)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``airflow-selfheal`` command."""
    from airflow_selfheal.cli import output

    args = build_parser().parse_args(argv)
    output.result_stream = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return _run(args)
    finally:
        output.result_stream = None


def _run(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int] = args.func
    from airflow.providers.common.compat.sdk import AirflowException

    try:
        return func(args)
    except (ValueError, RuntimeError, LookupError, AirflowException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
