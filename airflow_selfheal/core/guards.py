"""The two guards every write and every probe passes: project-relative paths only, and read-only SQL only.

Both refuse with a message that names what was refused and why; neither touches the file system or a warehouse.

.. code-block:: python

    check_relative_path("models/staging/stg_orders.sql")  # returned unchanged
    assert_read_only("select count(*) from RAW.ORDERS limit 1")  # passes; "drop table ..." raises
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

DIALECT = "snowflake"
_FORBIDDEN_FUNCTION_PREFIX = "SYSTEM$"


class UnsafePathError(ValueError):
    """A path is not a plain project-relative POSIX path; nothing was read or written."""


def check_relative_path(path: str) -> str:
    """
    Check a project-relative POSIX path: not empty, not absolute, no ``.``/``..``/empty parts, no backslash.

    :param path: e.g. ``models/staging/stg_orders.sql``.
    :return: the path, unchanged.
    :raises UnsafePathError: naming the path and what is wrong with it.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePathError(f"path {path!r} must be a non-empty string")
    if "\x00" in path or "\\" in path:
        raise UnsafePathError(f"path {path!r} must be a POSIX path without backslashes or NUL characters")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafePathError(
            f"path {path!r} is absolute; only paths relative to the dbt project are allowed"
        )
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise UnsafePathError(f"path {path!r} must not contain '..', '.' or empty parts")
    return path


class ReadOnlyViolation(ValueError):
    """A probe statement is not a single read-only statement; it was not sent."""


def _forbidden_node_types() -> tuple[type[exp.Expr], ...]:
    from sqlglot import exp

    return (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Merge,
        exp.Create,
        exp.Drop,
        exp.Alter,
        exp.Command,
        exp.Into,
        exp.Copy,
        exp.TruncateTable,
        exp.Use,
        exp.Set,
        exp.Transaction,
        exp.Commit,
        exp.Rollback,
    )


def assert_read_only(sql: str) -> None:
    """
    Refuse anything but one ``SELECT``/``SHOW``/``DESCRIBE`` statement.

    :param sql: the statement text.
    :raises ReadOnlyViolation: on a parse error, several statements, another statement kind, DML/DDL nested
        anywhere (e.g. in a CTE), ``SELECT ... INTO`` or a ``SYSTEM$`` function call.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [statement for statement in sqlglot.parse(sql, read=DIALECT) if statement is not None]
    except SqlglotError as exc:
        raise ReadOnlyViolation(
            f"refusing a statement that does not parse: {str(exc).splitlines()[0]}"
        ) from None
    if len(statements) != 1:
        raise ReadOnlyViolation(f"refusing {len(statements)} statements; a probe is exactly one statement")
    statement = statements[0]
    if not isinstance(statement, exp.Query | exp.Show | exp.Describe):
        raise ReadOnlyViolation(
            f"refusing a {type(statement).__name__.upper()} statement; only SELECT, SHOW and DESCRIBE are allowed"
        )
    forbidden = _forbidden_node_types()
    for node in statement.walk():
        if isinstance(node, forbidden):
            raise ReadOnlyViolation(f"refusing a statement that contains {type(node).__name__.upper()}")
        if isinstance(node, exp.Func) and str(node.name).upper().startswith(_FORBIDDEN_FUNCTION_PREFIX):
            raise ReadOnlyViolation(
                f"refusing a call to {node.name}: SYSTEM$ functions may have side effects"
            )
