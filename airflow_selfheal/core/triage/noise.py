r"""
Take the formatting off an error text so that triage reads the same message however it was carried.

Errors reach triage through Airflow task logs, Kubernetes pod logs, dbt's ``--log-format json`` lines, test
output and copies pasted into tickets. :func:`normalise` removes, in one bounded pass each:

* terminal colour codes, including ones whose escape character was lost on the way (``[31m``), and the
  box-drawing frames a CLI draws around an error;
* literal ``\n`` escapes, when a message was logged as a JSON or Python string;
* line prefixes: Airflow's ``[2024-05-01, 12:00:00 UTC] {subprocess.py:93} INFO - ``, Kubernetes'
  ``2024-05-01T12:00:00.123456789Z stdout F `` and ``[pod/name/container] ``, dbt's debug-log
  ``12:00:00.123456 [error] [Thread-1]: ``, pytest's ``E   ``;
* JSON log lines (dbt's structured events and Airflow's structlog lines), replaced by their message, with
  what dbt says about the node (its resource type, status and unique id) kept as :class:`Hints`.

:func:`flattened` is the text with its line breaks joined, for messages a terminal or a ticket wrapped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

# Colour codes whose ESC was stripped by a log shipper, e.g. "[31m" or "[0m".
# Not after a JSON or Python escape of ESC ("\u001b[31m"): that one is decoded with its line, then removed whole.
# The "[" comes first so that the regex engine scans for it; the look-behinds then check what precedes it.
_BARE_COLOUR = re.compile(
    r"\[(?<!\\u001b\[)(?<!\\u001B\[)(?<!\\x1b\[)(?<!\\033\[)(?:\d{1,3}(?:;\d{1,3}){0,4})?m"
)
# The frames a CLI draws around an error (rich's boxes): "│ Invalid connection configuration. │".
_BOX_DRAWING = re.compile(r"[\u2500-\u257f]")
# What a decoded JSON message may still hold: whole escape sequences, and control characters but \n and \t.
_ANSI_SEQUENCE = re.compile(r"\x1b\[[0-?]{0,32}[ -/]{0,8}[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decolour(text: str) -> str:
    """Colour codes (whole, or without their escape character), box frames and control characters removed."""
    return _CONTROL.sub("", _BOX_DRAWING.sub("", _BARE_COLOUR.sub("", _ANSI_SEQUENCE.sub("", text))))


_PREFIXES = re.compile(
    r"^(?:"
    # Airflow 2 and 3 task logs: "[2024-05-01, 12:00:00 UTC] {subprocess.py:93} INFO - "
    r"\[\d{4}-\d{2}-\d{2}[T ,][^\]\n]{0,48}\] (?:\{[^}\n]{0,160}\} )?(?:[A-Z]{4,8}|[a-z]{4,8}) - "
    # Kubernetes (CRI) and `kubectl logs --timestamps`: "2024-05-01T12:00:00.1Z stdout F "
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})? (?:(?:stdout|stderr) [FP] )?"
    # `kubectl logs --prefix`: "[pod/name/container] "
    r"|\[pod/[^\]\n]{1,253}\] "
    # dbt's debug log file: "12:00:00.123456 [error] [Thread-1 (worker)]: "
    r"|\d{2}:\d{2}:\d{2}\.\d{1,9} \[[a-z ]{3,8}\] \[[^\]\n]{1,80}\]: "
    # pytest's failure lines: "E   "
    r"|E(?: {1,40}(?=\S)|[ \t]{0,40}$)"
    r"){1,3}",
    re.MULTILINE,
)
_LITERAL_ESCAPES = {"\\n": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\r": ""}
_LITERAL_ESCAPE = re.compile(r"\\[nt\"'r]")
#: A JSON log line is parsed only up to this length; longer lines are kept as text.
_MAX_JSON_LINE = 200_000


_FAILED_STATUSES = frozenset({"error", "fail", "warn", "runtime error"})
_RUN_STATUSES = _FAILED_STATUSES | {"pass", "success", "skipped"}
#: dbt event codes (``dbt/events/types.py``) that say what kind of node they report on.
_EVENT_RESOURCE = {"Q007": "test", "Q018": "source", "Q012": "model", "Q015": "snapshot", "Q016": "seed"}


@dataclass
class Hints:
    """What structured log lines said about the failed node; empty when the text had none."""

    resource_type: str | None = None
    status: str | None = None
    unique_id: str | None = None
    event_code: str | None = None


def _message_of(line: str, hints: Hints) -> str | None:
    """The message of a JSON log line (dbt or Airflow), recording dbt's node facts in ``hints``."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    info = record.get("info")
    if isinstance(info, dict):  # dbt's structured event
        raw_data = record.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        raw_node = data.get("node_info")
        node: dict[str, Any] = raw_node if isinstance(raw_node, dict) else {}
        level = str(info.get("level") or "").lower()
        code = str(info.get("code") or "")
        status = data.get("status") or node.get("node_status")
        if level in {"error", "warn"} or status in _FAILED_STATUSES:
            # Q007 is a test's result, Q018 a source's freshness; Z021/Z022 name the node without node_info.
            resource_type = (
                node.get("resource_type") or data.get("resource_type") or _EVENT_RESOURCE.get(code)
            )
            hints.resource_type = str(resource_type or "") or hints.resource_type
            hints.status = str(status) if status in _RUN_STATUSES else hints.status
            hints.unique_id = str(node.get("unique_id") or "") or hints.unique_id
            hints.event_code = code or hints.event_code
        message = info.get("msg")
        return message if isinstance(message, str) else ""
    for key in ("event", "message", "msg"):
        value = record.get(key)
        if isinstance(value, str):
            return value
    return None


def normalise(text: str) -> tuple[str, Hints]:
    """
    The error text without its transport formatting, and what structured lines said about the node.

    :param text: a cleaned text (terminal escapes and control characters already removed).
    :return: ``(text, hints)``.
    """
    hints = Hints()
    text = decolour(text)
    text = _PREFIXES.sub("", text)
    text = _json_lines(text, hints)
    # A message logged as a JSON or Python string: its line breaks are the two characters "\n".
    if text.count("\\n") > text.count("\n") or ("\n" not in text and '\\"' in text):
        text = _PREFIXES.sub("", decolour(_unescape(text)))
        text = _json_lines(text, hints)
    return text, hints


def _unescape(text: str) -> str:
    """Decode a JSON string body exactly when it is one (a JSON log carried inside another), else the escapes."""
    try:
        decoded = json.loads(f'"{text}"')
    except ValueError:
        return _LITERAL_ESCAPE.sub(lambda found: _LITERAL_ESCAPES[found.group()], text)
    return decoded if isinstance(decoded, str) else text


def _json_lines(text: str, hints: Hints) -> str:
    """Replace each JSON log line by its message."""
    if "{" not in text:
        return text
    lines = text.split("\n")
    changed = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("{") and stripped.endswith("}") and len(stripped) <= _MAX_JSON_LINE:
            message = _message_of(stripped, hints)
            if message is not None:
                lines[index] = _PREFIXES.sub("", decolour(message))
                changed = True
    return "\n".join(lines) if changed else text


_WRAP = re.compile(r"[ \t]*\n[ \t]*")


def flattened(text: str) -> str:
    """The text with every line break and the indentation around it turned into one space."""
    return _WRAP.sub(" ", text)
