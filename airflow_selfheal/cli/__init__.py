"""``airflow-selfheal``: drift checks and baselines, incidents, offline triage, audit trails, artifact recovery.

Connections and the artifacts root come from Airflow's configuration, exactly as in tasks.
Exit codes: 0 fine, 1 drift detected (``drift check``) or accuracy under ``--fail-under``, 2 bad input or an
unreadable record, 3 an unexpected error (a bug: ``--debug`` shows its traceback), 141 stdout closed early
(piped to ``head``).

Whatever goes wrong, the command prints one line on stderr (the file, the problem and the fix) and no traceback;
``airflow-selfheal --debug ...`` raises instead, for the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING, NoReturn, cast

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

PROG = "airflow-selfheal"
EXIT_BAD_INPUT = 2
EXIT_UNEXPECTED = 3
# What a shell reports for a command killed by SIGPIPE (128 + 13): the reader stopped reading, nothing failed.
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error of the CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def cmd_quarantine(args: argparse.Namespace) -> int:
    """Move an unreadable record aside."""
    from airflow_selfheal.cli.output import emit
    from airflow_selfheal.hooks.artifacts import ArtifactStore

    emit(f"moved to {ArtifactStore().quarantine(args.path)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = _Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="on an error, raise it with its traceback instead of one line"
    )
    # Every subparser is a _Parser too (argparse makes them of the parent's class); the registrars take any.
    groups = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="group", required=True, metavar="COMMAND"),
    )

    from airflow_selfheal.cli.audit import add_audit_commands
    from airflow_selfheal.cli.drift import add_drift_commands
    from airflow_selfheal.cli.incidents import add_incident_commands

    add_drift_commands(groups)
    add_incident_commands(groups)
    add_audit_commands(groups)

    artifacts = groups.add_parser("artifacts", help="stored records").add_subparsers(
        dest="command", required=True, metavar="COMMAND"
    )
    quarantine = artifacts.add_parser("quarantine", help="move an unreadable record aside")
    quarantine.add_argument(
        "path",
        help="the record, as the error message names it: its path under the artifacts root, or its URL",
    )
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
    except BrokenPipeError:
        _close_stdout()
        return EXIT_BROKEN_PIPE
    finally:
        output.result_stream = None


def _run(args: argparse.Namespace) -> int:
    func: Callable[[argparse.Namespace], int] = args.func
    command = " ".join(part for part in (PROG, args.group, getattr(args, "command", None)) if part)
    try:
        return func(args)
    except BrokenPipeError:
        raise
    except Exception as exc:
        if args.debug:
            raise
        if not _is_bad_input(exc):
            return _unexpected(command, exc)
        _say(f"{command}: error: {_message(exc)}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if args.debug:
            raise
        _say(f"{command}: interrupted")
        return 130


def _is_bad_input(exc: Exception) -> bool:
    """
    Whether the error is about the input or the environment, with a message meant for the user.

    Value, OS and Airflow errors are; so are lookup and runtime errors raised with a message, by this package or
    as plain ``LookupError``/``RuntimeError``. A bare ``KeyError('step')`` or an ``AttributeError`` is a bug.
    """
    from airflow.providers.common.compat.sdk import AirflowException

    if isinstance(exc, (ValueError, OSError, AirflowException)):
        return True
    if isinstance(exc, (LookupError, RuntimeError)):
        return type(exc) in (LookupError, RuntimeError) or type(exc).__module__.startswith("airflow_selfheal")
    return False


def _message(exc: BaseException) -> str:
    """The error as one line; an OS error names its file."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
        if isinstance(exc, PermissionError):
            text += " (check its permissions and the user running airflow-selfheal)"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _unexpected(command: str, exc: BaseException) -> int:
    _say(
        f"{command}: unexpected error ({type(exc).__name__}: {_message(exc)[:300]}). This is a bug: rerun as "
        f"`{PROG} --debug {command.removeprefix(PROG).strip()} ...` for the traceback, and report it"
    )
    return EXIT_UNEXPECTED


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _close_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail again on the closed pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
