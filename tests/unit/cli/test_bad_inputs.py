"""
Every bad input of every command ends in one line on stderr naming the file (or argument), and exit 2.

The cases are in :mod:`tests.unit.cli.cases`; each runs ``airflow_selfheal.cli.main`` in-process, on an
artifacts root of its own.
"""

from __future__ import annotations

import io
import os
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal import cli
from airflow_selfheal.cli import output
from airflow_selfheal.cli.incidents import cmd_incidents_list
from tests.unit.cli.cases import CASES, GOOD_CASES, Case

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_selfheal.hooks.artifacts import ArtifactStore

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
#: How the line says what to do: pass another file, run, check, quarantine, define, point, move ...
FIX = re.compile(
    r"\b(?:pass|run|rerun|check|Check|quarantine|define it|point|move|leave it out|list them|List them|see `"
    r"|accept another|convert|Recovery|Upgrade)\b"
)


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    def execute(case: Case) -> tuple[int, str, str, str]:
        monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path / "root"))
        argv, names = case.prepare(tmp_path)
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse's own exit, after its one line
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, names, captured.out, captured.err

    return execute


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.id,
            marks=pytest.mark.skipif(
                case.needs_non_root and AS_ROOT, reason="file permissions do not stop root"
            ),
        )
        for case in cases
    ]


@pytest.mark.parametrize("case", _params(CASES))
def test_a_bad_input_is_one_line_naming_it(case: Case, run: Any) -> None:
    code, names, out, err = run(case)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == case.exit_code, err
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert names in lines[0]
    assert FIX.search(lines[0]), f"the line says what is wrong but not what to do: {lines[0]}"
    assert out == ""


@pytest.mark.parametrize("case", _params(GOOD_CASES))
def test_an_input_that_used_to_be_refused_or_misread_works(case: Case, run: Any) -> None:
    code, expected, out, err = run(case)
    assert (code, err) == (0, "")
    assert expected in out


def test_every_command_meets_bad_input(tmp_path: Path) -> None:
    commands = set()
    for index, case in enumerate(CASES):
        work = tmp_path / str(index)
        work.mkdir()
        argv, _ = case.prepare(work)
        commands.add(" ".join(part for part in argv[:2] if not part.startswith(("-", "/"))))
    assert len(CASES) >= 70
    assert {
        "incidents list",
        "incidents show",
        "triage",
        "audit show",
        "drift history",
        "drift accept",
        "drift check",
        "drift snapshot",
        "artifacts quarantine",
    } <= commands


class TestUnexpectedErrors:
    def test_a_bug_is_one_line_naming_the_command_and_debug(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path))
        monkeypatch.setattr("airflow_selfheal.records.incidents.IncidentStore.list", _raise_key_error)

        assert cli.main(["incidents", "list"]) == cli.EXIT_UNEXPECTED
        err = capsys.readouterr().err
        (line,) = err.splitlines()
        assert line.startswith("airflow-selfheal incidents list: unexpected error (KeyError: 'step')")
        assert "`airflow-selfheal --debug incidents list ...`" in line
        assert "Traceback" not in err

    def test_debug_raises_it(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path))
        monkeypatch.setattr("airflow_selfheal.records.incidents.IncidentStore.list", _raise_key_error)

        with pytest.raises(KeyError, match="step"):
            cli.main(["--debug", "incidents", "list"])

    def test_debug_raises_a_bad_input_too(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="does not exist"):
            cli.main(["--debug", "triage", str(tmp_path / "absent.json")])


def _raise_key_error(self: object) -> list[Any]:
    raise KeyError("step")


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_is_quiet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `airflow-selfheal incidents list | head -1`: head exits, the next write meets a closed pipe.
    monkeypatch.setenv("AIRFLOW__SELFHEAL__ARTIFACTS_ROOT", str(tmp_path))
    monkeypatch.setattr("sys.stdout", _ClosedPipe())

    assert cli.main(["incidents", "list"]) == cli.EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == ""
    assert output.result_stream is None


def test_limit_is_checked_when_called_directly() -> None:
    import argparse

    with pytest.raises(ValueError, match="--limit 0 shows nothing: pass 1 or more"):
        cmd_incidents_list(argparse.Namespace(limit=0))


def test_quarantine_never_overwrites_an_earlier_copy(artifact_store: ArtifactStore) -> None:
    relative = "incidents/inc-0123456789abcdef/incident.json"
    moved = []
    for content in (b"{first", b"{second", b"{third"):
        assert artifact_store.create_bytes(relative, content)
        moved.append(artifact_store.quarantine(relative))

    assert [url.rsplit("/", 1)[1] for url in moved] == [
        "incident.json.corrupt",
        "incident.json.corrupt-2",
        "incident.json.corrupt-3",
    ]
    assert [artifact_store.read_bytes(artifact_store.relative(url)) for url in moved] == [
        b"{first",
        b"{second",
        b"{third",
    ]
    assert not artifact_store.exists(relative)
