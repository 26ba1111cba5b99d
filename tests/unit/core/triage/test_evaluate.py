"""``airflow-selfheal triage --evaluate``: loading a corpus, the confusion matrix, ambiguous entries apart."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.cli import main
from airflow_selfheal.core.triage.evaluate import evaluate, load_corpus, render
from tests.unit.core.triage.test_classifier import CORPUS_DIR

if TYPE_CHECKING:
    from pathlib import Path

MISSING_COLUMN = "000904 (42000): SQL compilation error: error line 1 at position 7\ninvalid identifier 'X'"
TIMEOUT = (
    "000630 (57014): Statement reached its statement or warehouse timeout of 60 second(s) and was canceled."
)


def _write(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    return path


def test_confusion_matrix_counts_hits_and_misses_and_keeps_ambiguous_apart(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "mine.json",
        [
            {"id": "a", "text": MISSING_COLUMN, "expected_class": "missing_column"},
            {"id": "b", "text": TIMEOUT, "expected_class": "transient"},
            {"id": "c", "text": TIMEOUT, "expected_class": "resource"},  # a deliberately wrong label
            {"id": "d", "text": "odd", "expected_class": "ambiguous", "candidates": ["unknown", "transient"]},
        ],
    )
    evaluation = evaluate(load_corpus(corpus))
    assert (evaluation.correct, evaluation.total) == (2, 3)
    assert evaluation.confusion["resource"] == {"transient": 1}
    assert evaluation.misses == [
        {"id": "c", "expected": "resource", "got": "transient", "signal": "code 000630", "source": None}
    ]
    assert evaluation.ambiguous[0]["among_candidates"] is True
    text = render(evaluation)
    assert text.startswith("unambiguous: 2/3 correct (66.7%); ambiguous: 1")
    assert "c: expected resource, got transient (code 000630)" in text
    assert "decided by: code 3" in text


def test_a_folder_of_yaml_and_json_lines_files(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(
        "entries:\n  - id: y1\n    text: \"000904 (42000): invalid identifier 'X'\"\n    expected_class: missing_column\n"
    )
    (tmp_path / "two.jsonl").write_text(
        json.dumps({"id": "j1", "text": TIMEOUT, "expected_class": "transient"}) + "\n\n"
    )
    (tmp_path / "notes.txt").write_text("not a corpus")
    assert [entry.id for entry in load_corpus(tmp_path)] == ["y1", "j1"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            '{"entries": [{"text": "x", "expected_class": "nope"}]}', "is not one of", id="bad-class"
        ),
        pytest.param('{"entries": [{"expected_class": "unknown"}]}', "'text' is missing", id="no-text"),
        pytest.param('{"entries": 3}', "expected a list of entries", id="not-a-list"),
        pytest.param("{oops", "is not valid JSON", id="bad-json"),
        pytest.param(
            '{"entries": [{"id": "a", "text": "x", "expected_class": "unknown"},'
            ' {"id": "a", "text": "y", "expected_class": "unknown"}]}',
            "corpus ids repeat: a",
            id="repeated-id",
        ),
    ],
)
def test_bad_corpus_names_the_file_and_the_cause(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as raised:
        load_corpus(path)
    assert "bad.json" in str(raised.value) or "repeat" in message


def test_no_corpus_there(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no corpus at"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no corpus file"):
        load_corpus(tmp_path)


def test_cli_prints_the_matrix_and_fails_under_a_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _write(
        tmp_path / "c.json",
        [
            {"id": "a", "text": MISSING_COLUMN, "expected_class": "missing_column"},
            {"id": "b", "text": TIMEOUT, "expected_class": "resource"},
        ],
    )
    assert main(["triage", "--evaluate", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "confusion matrix (rows: expected, columns: predicted)" in out
    assert main(["triage", "--evaluate", str(corpus), "--fail-under", "75"]) == 1
    capsys.readouterr()
    assert main(["triage", "--evaluate", str(corpus), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["accuracy"] == 0.5
    assert report["per_class"] == {"missing_column": 1, "resource": 1}
    assert main(["triage", "--evaluate", str(tmp_path / "nothing.yaml")]) == 2
    assert "no corpus at" in capsys.readouterr().err


def test_cli_without_a_file_or_a_corpus_says_what_to_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage"]) == 2
    assert "--evaluate CORPUS" in capsys.readouterr().err


def test_the_corpus_under_tests_scores_every_unambiguous_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--evaluate", str(CORPUS_DIR), "--fail-under", "100"]) == 0, (
        capsys.readouterr().out
    )
