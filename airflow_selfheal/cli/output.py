"""Where the CLI prints results.

Results go to the real stdout, while Airflow's own logging (which writes to stdout) goes to stderr, so that
``--json`` output stays machine-readable.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TextIO

#: Set by :func:`airflow_selfheal.cli.main` for the length of a command.
result_stream: TextIO | None = None


def emit(text: str) -> None:
    """Print one line of the command's result."""
    print(text, file=result_stream or sys.stdout, flush=True)


def print_json(data: Any) -> None:
    """Print ``data`` as indented, key-sorted JSON."""
    emit(json.dumps(data, indent=2, sort_keys=True, default=str))
