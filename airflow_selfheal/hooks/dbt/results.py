"""
What a dbt run reports: the nodes of ``run_results.json`` and the outcome of one validation attempt.

Pure data and parsing, shared by the validation and the production runner; nothing here starts dbt.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.incident import normalize_error_signature, signature_key
from airflow_selfheal.core.redaction import redact, truncate

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

MESSAGE_LIMIT = 2000
#: Node statuses that do not fail a build (``warn``: dbt exits 0).
PASSED_STATUSES = frozenset({"success", "pass", "warn"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


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

        Each message is read as an incident's error signature is
        (:func:`~airflow_selfheal.core.incident.normalize_error_signature`), so that two attempts failing the
        same way match although their query ids, durations, temp dirs or log formatting differ.

        :return: 16 hex digits; the clone name (in any case), case, whitespace and volatile parts do not change
            it.
        """
        clone = re.compile(re.escape(self.target_database), re.IGNORECASE) if self.target_database else None

        def key(text: str | None) -> str:
            text = text or ""
            return signature_key(normalize_error_signature(clone.sub("<clone>", text) if clone else text))

        parts = [key(self.error)]
        for failure in sorted(self.failures, key=lambda node: node.unique_id):
            parts.append(f"{failure.unique_id}|{failure.status}|{key(failure.message)}")
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
            message = truncate(
                redact(ANSI_ESCAPE.sub("", str(message)), extra_secrets=secrets), MESSAGE_LIMIT
            )
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
