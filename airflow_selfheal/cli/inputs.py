"""
Reading the files a user passes to the CLI, and the argument types that check its options.

Every refusal is a :class:`ValueError` whose message is one sentence naming the file, what is wrong with it and
what to pass instead, e.g. ``target/manifest.json is a dbt manifest, not run_results.json: pass
target/run_results.json``. Text is decoded by its byte order mark (UTF-8, UTF-16 or UTF-32; UTF-16 without one
is recognised by its zero bytes), else as UTF-8; binary and undecodable files are refused with the reason.

.. code-block:: python

    text = read_text_input(Path("target/run_results.json"), expected="a run_results.json or a dbt log")
    kind = artifact_kind(json.loads(text))  # "run-results", "manifest", "sources", "catalog"... or None
"""

from __future__ import annotations

import argparse
import codecs
import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

#: What each dbt artifact is called in messages, by the kind its ``metadata.dbt_schema_version`` names.
ARTIFACT_NAMES = {
    "run-results": "a dbt run_results.json",
    "manifest": "a dbt manifest",
    "sources": "a dbt sources.json (source freshness results)",
    "catalog": "a dbt catalog (docs generate)",
    "semantic_manifest": "a dbt semantic manifest",
}
#: What a command asks for, in "X is a dbt manifest, not <this>".
WANTED_NAMES = {
    "run-results": "run_results.json",
    "manifest": "a manifest",
    "sources": "sources.json",
    "catalog": "a catalog",
    "semantic_manifest": "a semantic manifest",
}
#: The file dbt writes each artifact to, for the "pass target/<file>" advice.
ARTIFACT_FILES = {
    "run-results": "run_results.json",
    "manifest": "manifest.json",
    "sources": "sources.json",
    "catalog": "catalog.json",
    "semantic_manifest": "semantic_manifest.json",
}
# Control characters no text file holds (tab, line ends, form feed and the terminal's escape are allowed).
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_SCHEMA_KIND = re.compile(r"/dbt/(?P<kind>[a-z_-]{1,40})/v\d{1,4}\.json$")
# The UTF-32 marks first: UTF-32-LE's starts with UTF-16-LE's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def read_text_input(path: Path, *, expected: str, window_bytes: int | None = None) -> str:
    """
    The text of a file passed on the command line, or a :class:`ValueError` saying why it is not usable.

    :param path: the file.
    :param expected: what should be passed, for messages, e.g. ``a run_results.json or a dbt log``.
    :param window_bytes: read only this many bytes of each end of a longer file (the middle is replaced by a
        line saying how much was skipped); None to read it all.
    :return: the decoded text, without a byte order mark and never blank.
    :raises ValueError: when the file is missing, a folder, unreadable, empty, binary or not text.
    """
    head, tail, skipped = _read_bytes(path, expected, window_bytes)
    if not head:
        raise ValueError(f"{path} is empty: pass {expected}")
    encoding, bom = _encoding(head)
    if encoding == "utf-8" and (b"\x00" in head or b"\x00" in tail):
        raise ValueError(f"{path} is a binary file (it holds NUL bytes), not text: pass {expected}")
    try:
        if not skipped:
            text = head[bom:].decode(encoding)
        else:
            # The window's edges can cut a character in two: the head keeps whole ones, the tail starts at one.
            start = codecs.getincrementaldecoder(encoding)().decode(head[bom:], final=False)
            text = f"{start}\n…[{skipped} bytes not read]…\n{_decode_tail(tail, encoding)}"
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path} is not {encoding.upper()} text ({exc.reason} at byte {exc.start}): pass {expected}, "
            f"converted to UTF-8 if needed (e.g. `iconv -f latin1 -t utf-8 {path}`)"
        ) from None
    if not text.strip():
        raise ValueError(f"{path} holds only whitespace: pass {expected}")
    if len(_CONTROL_CHARS.findall(text)) > len(text) // 1000:
        raise ValueError(f"{path} is a binary file (it holds control characters), not text: pass {expected}")
    return text


def _read_bytes(path: Path, expected: str, window_bytes: int | None) -> tuple[bytes, bytes, int]:
    """The file's bytes, or its two ends when it is long, and how many bytes of the middle were skipped."""
    try:
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not a file: pass {expected}")
        size = path.stat().st_size
        with path.open("rb") as handle:
            if window_bytes is None or size <= 2 * window_bytes:
                return handle.read(), b"", 0
            head = handle.read(window_bytes)
            handle.seek(size - window_bytes)
            return head, handle.read(), size - 2 * window_bytes
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist: check the path, and pass {expected}") from None
    except PermissionError:
        raise ValueError(
            f"{path} cannot be read (permission denied): check its permissions (`ls -l {path}`)"
        ) from None
    except OSError as exc:
        raise ValueError(f"{path} cannot be read ({exc.strerror or exc}): pass {expected}") from None


def _encoding(raw: bytes) -> tuple[str, int]:
    """The text's encoding and the length of its byte order mark."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return encoding, len(bom)
    sample = raw[:4096]
    # UTF-16 text of mostly ASCII without a byte order mark: every other byte is zero.
    if len(sample) >= 4:
        even_zeros, odd_zeros = sample[0::2].count(0), sample[1::2].count(0)
        if odd_zeros > len(sample) // 4 and not even_zeros:
            return "utf-16-le", 0
        if even_zeros > len(sample) // 4 and not odd_zeros:
            return "utf-16-be", 0
    return "utf-8", 0


def _decode_tail(tail: bytes, encoding: str) -> str:
    """The tail window from its first whole character: the bytes of a character cut in two are dropped."""
    step = 4 if encoding.startswith("utf-32") else 2 if encoding.startswith("utf-16") else 1
    for start in range(0, 4, step):
        try:
            return tail[start:].decode(encoding)
        except UnicodeDecodeError as exc:
            if start + exc.start >= 4 - step + 1:
                raise
    return tail[4:].decode(encoding)


def artifact_kind(data: Any) -> str | None:
    """
    Which dbt artifact a parsed JSON file is: ``run-results``, ``manifest``, ``sources``, ``catalog``...

    :param data: the parsed file.
    :return: the kind from ``metadata.dbt_schema_version``, else guessed from the top-level keys; None when it
        does not look like a dbt artifact.
    """
    if not isinstance(data, dict):
        return None
    metadata = data.get("metadata")
    version = metadata.get("dbt_schema_version") if isinstance(metadata, dict) else None
    if isinstance(version, str) and (found := _SCHEMA_KIND.search(version)):
        return found.group("kind")
    if isinstance(data.get("results"), list) and "elapsed_time" in data:
        return "run-results"
    if isinstance(data.get("nodes"), dict) and isinstance(data.get("sources"), dict):
        return "catalog" if "errors" in data and "macros" not in data else "manifest"
    return None


def other_artifact(path: Path, kind: str | None, wanted: str) -> ValueError | None:
    """
    The refusal of a dbt artifact of another kind than ``wanted``, naming both and the file to pass.

    :param path: the file as the user gave it.
    :param kind: from :func:`artifact_kind`.
    :param wanted: the kind the command reads, e.g. ``run-results``.
    :return: the error to raise, or None when ``kind`` is ``wanted`` or no dbt artifact.
    """
    if kind is None or kind == wanted:
        return None
    name = ARTIFACT_NAMES.get(kind, f"a dbt {kind} artifact")
    wanted_file = ARTIFACT_FILES.get(wanted, wanted)
    return ValueError(
        f"{path} is {name}, not {WANTED_NAMES.get(wanted, wanted)}: pass {path.with_name(wanted_file)}"
    )


# ---------------------------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------------------------


def positive_int(value: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number; pass 1 or more") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1; pass 1 or more")
    return number


def percent(value: str) -> float:
    """An argparse type: a percentage from 0 to 100."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a number; pass a percentage from 0 to 100"
        ) from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"{value} is not a percentage from 0 to 100")
    return number


def table_name(value: str) -> str:
    """An argparse type: ``DATABASE.SCHEMA.TABLE`` or ``SCHEMA.TABLE``."""
    parts = value.split(".")
    if len(parts) not in (2, 3) or not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(f"{value!r} is not DATABASE.SCHEMA.TABLE or SCHEMA.TABLE")
    return value
