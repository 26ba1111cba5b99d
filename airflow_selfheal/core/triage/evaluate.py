"""
Measure the classifier on a corpus of labelled failures: accuracy, a confusion matrix, the misses.

A corpus is a YAML or JSON file, a JSON Lines file, or a folder of them. Each entry is a mapping::

    id: sf_numeric_empty_string        # optional; the file and position are used when absent
    text: "100038 (22018): Numeric value '' is not recognized"
    expected_class: type_mismatch      # a FailureClass value, or "ambiguous"
    candidates: [type_mismatch, ...]   # optional, for ambiguous entries: the classes it could be
    resource_type: model               # optional, as classify() takes them
    status: error
    test_name: unique
    source: "where the text came from"  # optional, kept for the report

A YAML or JSON file holds a list of entries or a mapping with an ``entries`` list. Ambiguous entries are
classified and reported apart: they count in no accuracy.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.triage.classifier import classify
from airflow_selfheal.core.triage.model import FailureClass

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

AMBIGUOUS = "ambiguous"
_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")
_CLASSES = tuple(failure_class.value for failure_class in FailureClass)


@dataclass(frozen=True)
class CorpusEntry:
    """One labelled failure text."""

    id: str
    text: str
    expected: str
    resource_type: str | None = None
    status: str | None = None
    test_name: str | None = None
    candidates: tuple[str, ...] = ()
    source: str | None = None


def _entry(raw: Any, where: str) -> CorpusEntry:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: an entry must be a mapping with 'text' and 'expected_class'")
    text, expected = raw.get("text"), raw.get("expected_class")
    if not isinstance(text, str):
        raise ValueError(f"{where}: 'text' is missing or not a string")
    if expected != AMBIGUOUS and expected not in _CLASSES:
        raise ValueError(
            f"{where}: expected_class {expected!r} is not one of {', '.join(_CLASSES)} or {AMBIGUOUS!r}"
        )
    candidates = raw.get("candidates") or ()
    if not isinstance(candidates, list | tuple) or any(item not in _CLASSES for item in candidates):
        raise ValueError(f"{where}: 'candidates' must be a list of failure classes")

    def optional(key: str) -> str | None:
        value = raw.get(key)
        return None if value is None else str(value)

    return CorpusEntry(
        id=str(raw.get("id") or where),
        text=text,
        expected=str(expected),
        resource_type=optional("resource_type"),
        status=optional("status"),
        test_name=optional("test_name"),
        candidates=tuple(candidates),
        source=optional("source"),
    )


def _read(path: Path) -> list[CorpusEntry]:
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the corpus file {path}: {exc}") from exc
    if path.suffix == ".jsonl":
        items: list[Any] = []
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{path}:{number} is not a JSON line ({exc})") from exc
    else:
        if path.suffix == ".json":
            try:
                loaded = json.loads(content)
            except ValueError as exc:
                raise ValueError(f"{path} is not valid JSON ({exc})") from exc
        else:
            import yaml

            try:
                loaded = yaml.safe_load(content)
            except yaml.YAMLError as exc:
                raise ValueError(f"{path} is not valid YAML ({exc})") from exc
        found = loaded.get("entries") if isinstance(loaded, dict) else loaded
        if not isinstance(found, list):
            raise ValueError(f"{path}: expected a list of entries or a mapping with an 'entries' list")
        items = found
    return [_entry(item, f"{path}#{index}") for index, item in enumerate(items, 1)]


def load_corpus(path: str | Path) -> list[CorpusEntry]:
    """
    Read a corpus file, or every corpus file in a folder (sorted by name).

    :param path: a ``.yaml``, ``.yml``, ``.json`` or ``.jsonl`` file, or a folder holding them.
    :return: the entries.
    :raises ValueError: naming the file and entry when something is missing or malformed, or when ids repeat.
    """
    location = Path(path)
    if location.is_dir():
        files = sorted(item for item in location.rglob("*") if item.suffix in _SUFFIXES and item.is_file())
        if not files:
            raise ValueError(f"{location} holds no corpus file ({', '.join(_SUFFIXES)})")
    elif location.is_file():
        files = [location]
    else:
        raise ValueError(f"no corpus at {location}: pass a corpus file or a folder of them")
    entries = [entry for file in files for entry in _read(file)]
    repeated = [name for name, count in Counter(entry.id for entry in entries).items() if count > 1]
    if repeated:
        raise ValueError(f"corpus ids repeat: {', '.join(sorted(repeated)[:10])}")
    return entries


@dataclass
class Evaluation:
    """What :func:`evaluate` measured."""

    total: int = 0
    correct: int = 0
    #: expected class -> predicted class -> count, unambiguous entries only.
    confusion: dict[str, Counter[str]] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    #: the kind of signal that decided (code, sqlstate, pattern, status...) -> count.
    signals: Counter[str] = field(default_factory=Counter)

    @property
    def accuracy(self) -> float:
        """Correct unambiguous entries over all of them; 1.0 for an empty corpus."""
        return self.correct / self.total if self.total else 1.0

    def to_dict(self) -> dict[str, Any]:
        """The evaluation as JSON-compatible data."""
        return {
            "total": self.total,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 4),
            "per_class": {name: sum(row.values()) for name, row in sorted(self.confusion.items())},
            "confusion": {name: dict(sorted(row.items())) for name, row in sorted(self.confusion.items())},
            "misses": self.misses,
            "ambiguous": self.ambiguous,
            "signals": dict(self.signals.most_common()),
        }


def _signal_kind(signal: str) -> str:
    return signal.split(" ", 1)[0] if signal else "none"


def evaluate(entries: Iterable[CorpusEntry]) -> Evaluation:
    """
    Classify every entry and compare with its label.

    :param entries: the corpus, e.g. from :func:`load_corpus`.
    :return: the evaluation.
    """
    result = Evaluation()
    for entry in entries:
        triage = classify(
            entry.text, resource_type=entry.resource_type, test_name=entry.test_name, status=entry.status
        )
        got = triage.failure_class.value
        if entry.expected == AMBIGUOUS:
            result.ambiguous.append(
                {
                    "id": entry.id,
                    "candidates": list(entry.candidates),
                    "got": got,
                    "signal": triage.signal,
                    "among_candidates": got in entry.candidates,
                }
            )
            continue
        result.total += 1
        result.signals[_signal_kind(triage.signal)] += 1
        result.confusion.setdefault(entry.expected, Counter())[got] += 1
        if got == entry.expected:
            result.correct += 1
        else:
            result.misses.append(
                {
                    "id": entry.id,
                    "expected": entry.expected,
                    "got": got,
                    "signal": triage.signal,
                    "source": entry.source,
                }
            )
    return result


_ABBREVIATIONS = {
    "compile_error": "comp",
    "dependency_error": "dep",
    "missing_column": "col",
    "missing_relation": "rel",
    "type_mismatch": "type",
    "test_unique": "uniq",
    "test_not_null": "null",
    "test_accepted_values": "accv",
    "test_relationships": "rels",
    "test_singular": "sing",
    "source_freshness": "fresh",
    "transient": "trans",
    "permission": "perm",
    "resource": "res",
    "unknown": "unk",
}


def render(evaluation: Evaluation, *, classes: Sequence[str] = _CLASSES) -> str:
    """
    The evaluation as text.

    It holds the score, the confusion matrix (rows expected, columns predicted), the misses and the
    ambiguous entries.

    :param evaluation: from :func:`evaluate`.
    :param classes: the classes to show, in order; classes with no entry and no prediction are left out.
    :return: the report.
    """
    predicted = {name for row in evaluation.confusion.values() for name in row}
    shown = [name for name in classes if name in evaluation.confusion or name in predicted]
    lines = [
        f"unambiguous: {evaluation.correct}/{evaluation.total} correct ({evaluation.accuracy:.1%});"
        f" ambiguous: {len(evaluation.ambiguous)} (reported apart)",
        "",
        "confusion matrix (rows: expected, columns: predicted)",
    ]
    width = max((len(name) for name in shown), default=8)
    header = " " * (width + 2) + " ".join(f"{_ABBREVIATIONS.get(name, name)[:5]:>5}" for name in shown)
    lines.append(header + "  total")
    for name in shown:
        row = evaluation.confusion.get(name, Counter())
        cells = " ".join(f"{(row.get(other) or '.')!s:>5}" for other in shown)
        lines.append(f"{name:<{width}}  {cells}  {sum(row.values()):>5}")
    if evaluation.signals:
        decided = ", ".join(f"{kind} {count}" for kind, count in evaluation.signals.most_common())
        lines += ["", f"decided by: {decided}"]
    if evaluation.misses:
        lines += ["", "misses:"]
        lines += [
            f"  {miss['id']}: expected {miss['expected']}, got {miss['got']} ({miss['signal']})"
            for miss in evaluation.misses
        ]
    if evaluation.ambiguous:
        lines += ["", "ambiguous (not scored):"]
        lines += [
            f"  {item['id']}: got {item['got']} ({item['signal']}); candidates {', '.join(item['candidates']) or '-'}"
            for item in evaluation.ambiguous
        ]
    return "\n".join(lines)
