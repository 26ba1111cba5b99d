"""
Bad inputs for every command of the CLI, as a table (no tests here).

Each case prepares its files in a fresh folder (``work``; the artifacts root is ``work/root``) and returns the
command line and what the one line on stderr must name (the file, or the argument). Only plain files are
written, so the same table also runs against an older checkout of the package, to count what it did wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dev.failure_contexts import REAL_RUN_RESULTS

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

INCIDENT_ID = "inc-0123456789abcdef"
#: A PNG header and some bytes that are no text in any encoding.
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\xff\xfe\x00\xd8"


@dataclass(frozen=True)
class Case:
    """One bad input: ``prepare(work)`` returns the argv and the text the error line must contain."""

    id: str
    prepare: Callable[[Path], tuple[list[str], str]]
    #: The exit code expected: 2 for bad input.
    exit_code: int = 2
    #: Permissions do not stop root: the case cannot be set up as root.
    needs_non_root: bool = False


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _json(path: Path, data: Any) -> Path:
    return _write(path, json.dumps(data))


def _artifact(kind: str, **extra: Any) -> dict[str, Any]:
    """The top of a dbt artifact of ``kind`` (manifest, run-results, sources, catalog)."""
    return {"metadata": {"dbt_schema_version": f"https://schemas.getdbt.com/dbt/{kind}/v1.json"}, **extra}


def _incident_record(root: Path, content: str | bytes) -> str:
    relative = f"incidents/{INCIDENT_ID}/incident.json"
    _write(root / relative, content)
    return relative


def _valid_incident(root: Path) -> None:
    from airflow_selfheal.core.incident import DbtNodeRef, build_incident
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.records.incidents import IncidentStore

    incident = build_incident(
        pipeline="shop",
        run_id="manual__1",
        task_id="shop.stg_orders.run",
        try_number=1,
        nodes=[DbtNodeRef("model.shop.stg_orders", "model", "stg_orders")],
        error="Database Error in model stg_orders\n  000904 (42000): invalid identifier 'X'",
        failed_at=datetime(2026, 3, 1, tzinfo=timezone.utc),
    )
    IncidentStore(ArtifactStore(root=str(root), conn_id="")).save(incident)


def _one_incident_with_occurrence(root: Path, content: str | bytes) -> str:
    _valid_incident(root)
    (folder,) = (root / "incidents").iterdir()
    relative = f"incidents/{folder.name}/occurrences/broken.json"
    _write(root / relative, content)
    return relative


def _audit_record(root: Path, data: Any) -> str:
    relative = f"audit/{INCIDENT_ID}/000001-20260301T060000000000Z-triage.json"
    _write(root / relative, data if isinstance(data, (str, bytes)) else json.dumps(data))
    return relative


AUDIT_ENTRY = {
    "incident_id": INCIDENT_ID,
    "seq": 1,
    "step": "triage",
    "status": "done",
    "at": "2026-03-01T06:00:00+00:00",
}


def _acceptance(root: Path, data: Any) -> str:
    relative = "baselines/shop_raw/accepted/20260301T060000000000Z-v1.json"
    _write(root / relative, data if isinstance(data, (str, bytes)) else json.dumps(data))
    return relative


def _corpus(work: Path) -> Path:
    return _write(
        work / "corpus.yaml",
        "entries:\n  - id: a\n    text: \"000904 (42000): invalid identifier 'X'\"\n    expected_class: missing_column\n",
    )


def _run_results(work: Path) -> Path:
    return _json(work / "target" / "run_results.json", REAL_RUN_RESULTS)


def case(identifier: str, **options: Any) -> Callable[[Callable[[Path], tuple[list[str], str]]], Case]:
    def register(prepare: Callable[[Path], tuple[list[str], str]]) -> Case:
        built = Case(identifier, prepare, **options)
        CASES.append(built)
        return built

    return register


CASES: list[Case] = []

# -- arguments ----------------------------------------------------------------------------------------------


@case("no-command")
def _(work: Path) -> tuple[list[str], str]:
    return [], "airflow-selfheal"


@case("unknown-command")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidnets", "list"], "incidnets"


@case("limit-negative")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list", "--limit", "-1"], "--limit"


@case("limit-zero")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list", "--limit", "0"], "--limit"


@case("limit-not-a-number")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list", "--limit", "ten"], "--limit"


@case("fail-under-over-100")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", "--evaluate", str(_corpus(work)), "--fail-under", "150"], "--fail-under"


@case("fail-under-nan")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", "--evaluate", str(_corpus(work)), "--fail-under", "nan"], "--fail-under"


@case("fail-under-without-evaluate")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", str(_run_results(work)), "--fail-under", "90"], "--fail-under"


@case("triage-file-and-evaluate")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", str(_run_results(work)), "--evaluate", str(_corpus(work))], "--evaluate"


@case("triage-nothing")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage"], "--evaluate"


# -- triage: the file ---------------------------------------------------------------------------------------


@case("triage-missing-file")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", str(work / "target" / "run_results.json")], str(work / "target" / "run_results.json")


@case("triage-directory")
def _(work: Path) -> tuple[list[str], str]:
    (work / "target").mkdir()
    return ["triage", str(work / "target")], str(work / "target")


@case("triage-empty-file")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "run_results.json", "")
    return ["triage", str(path)], str(path)


@case("triage-blank-file")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "dbt.log", "\n   \n\t\n")
    return ["triage", str(path)], str(path)


@case("triage-binary-file")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "screenshot.png", BINARY * 20)
    return ["triage", str(path)], str(path)


@case("triage-not-utf8")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "dbt.log", "Database Error: colonne « DATE » inconnue\n".encode("latin-1"))
    return ["triage", str(path)], str(path)


@case("triage-json-array")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "run_results.json", [{"status": "error"}])
    return ["triage", str(path)], str(path)


@case("triage-json-scalar")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "run_results.json", "error")
    return ["triage", str(path)], str(path)


@case("triage-manifest")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "target" / "manifest.json", _artifact("manifest", nodes={}, sources={}))
    return ["triage", str(path)], "is a dbt manifest, not run_results.json"


@case("triage-sources")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "target" / "sources.json", _artifact("sources", results=[{"status": "error"}]))
    return ["triage", str(path)], f"{path} is a dbt sources"


@case("triage-catalog")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "target" / "catalog.json", _artifact("catalog", nodes={}, sources={}))
    return ["triage", str(path)], f"{path} is a dbt catalog"


@case("triage-json-object-not-an-artifact")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "settings.json", {"name": "x"})
    return ["triage", str(path)], str(path)


@case("triage-results-not-a-list")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "run_results.json", _artifact("run-results", results={"status": "error"}))
    return ["triage", str(path)], str(path)


@case("triage-truncated-json")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "run_results.json", json.dumps(REAL_RUN_RESULTS)[:200])
    return ["triage", str(path)], str(path)


@case("triage-unreadable", needs_non_root=True)
def _(work: Path) -> tuple[list[str], str]:
    path = _run_results(work)
    os.chmod(path, 0)
    return ["triage", str(path)], str(path)


# -- triage: the drift report and the corpus ----------------------------------------------------------------


@case("drift-report-missing")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", str(_run_results(work)), "--drift-report", str(work / "drift.json")], str(
        work / "drift.json"
    )


@case("drift-report-directory")
def _(work: Path) -> tuple[list[str], str]:
    (work / "drift").mkdir()
    return ["triage", str(_run_results(work)), "--drift-report", str(work / "drift")], str(work / "drift")


@case("drift-report-binary")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "drift.json", BINARY)
    return ["triage", str(_run_results(work)), "--drift-report", str(path)], str(path)


@case("drift-report-wrong-shape")
def _(work: Path) -> tuple[list[str], str]:
    path = _json(work / "drift.json", {"status": "ok"})
    return ["triage", str(_run_results(work)), "--drift-report", str(path)], str(path)


@case("drift-report-is-run-results")
def _(work: Path) -> tuple[list[str], str]:
    run_results = _run_results(work)
    return ["triage", str(run_results), "--drift-report", str(run_results)], str(run_results)


@case("evaluate-missing")
def _(work: Path) -> tuple[list[str], str]:
    return ["triage", "--evaluate", str(work / "corpus")], str(work / "corpus")


@case("evaluate-empty-folder")
def _(work: Path) -> tuple[list[str], str]:
    (work / "corpus").mkdir()
    return ["triage", "--evaluate", str(work / "corpus")], str(work / "corpus")


@case("evaluate-binary")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "corpus.yaml", BINARY)
    return ["triage", "--evaluate", str(path)], str(path)


@case("evaluate-not-a-corpus")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "corpus.yaml", "name: x\n")
    return ["triage", "--evaluate", str(path)], str(path)


@case("evaluate-entry-without-text")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "corpus.yaml", "entries:\n  - id: a\n    expected_class: missing_column\n")
    return ["triage", "--evaluate", str(path)], str(path)


@case("evaluate-run-results")
def _(work: Path) -> tuple[list[str], str]:
    path = _run_results(work)
    return ["triage", "--evaluate", str(path)], str(path)


# -- incidents ----------------------------------------------------------------------------------------------


@case("incident-empty")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list"], _incident_record(work / "root", "")


@case("incident-binary")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list"], _incident_record(work / "root", BINARY)


@case("incident-json-list")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list"], _incident_record(work / "root", "[]")


@case("incident-missing-keys")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "show", INCIDENT_ID], _incident_record(
        work / "root", json.dumps({"incident_id": INCIDENT_ID})
    )


@case("incident-is-a-directory")
def _(work: Path) -> tuple[list[str], str]:
    relative = f"incidents/{INCIDENT_ID}/incident.json"
    (work / "root" / relative).mkdir(parents=True)
    return ["incidents", "show", INCIDENT_ID], relative


@case("incident-unreadable", needs_non_root=True)
def _(work: Path) -> tuple[list[str], str]:
    _valid_incident(work / "root")
    (record,) = (work / "root" / "incidents").glob("*/incident.json")
    os.chmod(record, 0)
    return ["incidents", "list"], record.name


@case("occurrence-json-list")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list"], _one_incident_with_occurrence(work / "root", "[1, 2]")


@case("occurrence-binary")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "list", "--json"], _one_incident_with_occurrence(work / "root", BINARY)


@case("incident-show-malformed-id")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "show", "../../etc/passwd"], "../../etc/passwd"


@case("incident-show-unknown")
def _(work: Path) -> tuple[list[str], str]:
    return ["incidents", "show", INCIDENT_ID], INCIDENT_ID


@case("artifacts-root-is-a-file")
def _(work: Path) -> tuple[list[str], str]:
    _write(work / "root", "not a folder")
    return ["incidents", "list"], str(work / "root")


# -- audit --------------------------------------------------------------------------------------------------


@case("audit-json-list")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", [AUDIT_ENTRY])


@case("audit-empty")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", "")


@case("audit-missing-step")
def _(work: Path) -> tuple[list[str], str]:
    entry = {key: value for key, value in AUDIT_ENTRY.items() if key != "step"}
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", entry)


@case("audit-bad-time")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", {**AUDIT_ENTRY, "at": "yesterday"})


@case("audit-naive-time")
def _(work: Path) -> tuple[list[str], str]:
    second = {**AUDIT_ENTRY, "seq": 2, "at": "2026-03-01T06:05:00"}
    _write(
        work / "root" / f"audit/{INCIDENT_ID}/000002-20260301T060500000000Z-clone.json", json.dumps(second)
    )
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", AUDIT_ENTRY).rsplit("/", 1)[0]


@case("audit-details-not-an-object")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", INCIDENT_ID], _audit_record(work / "root", {**AUDIT_ENTRY, "details": [1, 2]})


@case("audit-bad-id")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", "../x"], "../x"


@case("audit-unknown-id")
def _(work: Path) -> tuple[list[str], str]:
    return ["audit", "show", INCIDENT_ID], INCIDENT_ID


# -- drift --------------------------------------------------------------------------------------------------


@case("drift-history-acceptance-missing-keys")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "history", "shop_raw"], _acceptance(work / "root", {"version": "v1"})


@case("drift-history-acceptance-json-list")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "history", "shop_raw"], _acceptance(work / "root", [])


@case("drift-history-acceptance-binary")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "history", "shop_raw"], _acceptance(work / "root", BINARY)


@case("drift-history-bad-name")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "history", "shop/raw"], "shop/raw"


@case("drift-accept-unknown-version")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "accept", "shop_raw", "v9"], "v9"


@case("drift-accept-path-in-version")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "accept", "shop_raw", "../../incidents/x"], "../../incidents/x"


@case("drift-accept-snapshot-binary")
def _(work: Path) -> tuple[list[str], str]:
    relative = "baselines/shop_raw/snapshots/v1.json"
    _write(work / "root" / relative, BINARY)
    return ["drift", "accept", "shop_raw", "v1"], relative


@case("drift-check-baseline-snapshot-malformed")
def _(work: Path) -> tuple[list[str], str]:
    relative = "baselines/shop_raw/snapshots/v1.json"
    _json(work / "root" / relative, {"captured_at": "2026-03-01T06:00:00+00:00"})
    _acceptance(
        work / "root", {"version": "v1", "accepted_by": "jane", "reason": "r", "accepted_at": "2026-03-01"}
    )
    return ["drift", "check", "shop_raw", "--tables", "DB.RAW.ORDERS"], relative


@case("drift-check-manifest-missing")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "check", "shop_raw", "--manifest", str(work / "manifest.json")], str(
        work / "manifest.json"
    )


@case("drift-check-manifest-directory")
def _(work: Path) -> tuple[list[str], str]:
    (work / "target").mkdir()
    return ["drift", "check", "shop_raw", "--manifest", str(work / "target")], str(work / "target")


@case("drift-check-manifest-empty")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "manifest.json", "")
    return ["drift", "snapshot", "shop_raw", "--manifest", str(path)], str(path)


@case("drift-check-manifest-is-run-results")
def _(work: Path) -> tuple[list[str], str]:
    path = _run_results(work)
    return [
        "drift",
        "check",
        "shop_raw",
        "--manifest",
        str(path),
    ], "is a dbt run_results.json, not a manifest"


@case("drift-check-no-targets")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "check", "shop_raw"], "--manifest"


@case("drift-check-malformed-table")
def _(work: Path) -> tuple[list[str], str]:
    return ["drift", "check", "shop_raw", "--tables", "ORDERS"], "ORDERS"


# -- artifacts quarantine -----------------------------------------------------------------------------------


@case("quarantine-missing")
def _(work: Path) -> tuple[list[str], str]:
    return ["artifacts", "quarantine", "incidents/inc-x/incident.json"], "incidents/inc-x/incident.json"


@case("quarantine-directory")
def _(work: Path) -> tuple[list[str], str]:
    (work / "root" / "incidents" / INCIDENT_ID).mkdir(parents=True)
    return ["artifacts", "quarantine", f"incidents/{INCIDENT_ID}"], f"incidents/{INCIDENT_ID}"


@case("quarantine-outside-the-root")
def _(work: Path) -> tuple[list[str], str]:
    return ["artifacts", "quarantine", "../outside.json"], "../outside.json"


@case("quarantine-empty-path")
def _(work: Path) -> tuple[list[str], str]:
    return ["artifacts", "quarantine", ""], "quarantine"


# -- inputs that used to be refused or misread, and must work -----------------------------------------------

GOOD_CASES: list[Case] = []


def good(identifier: str) -> Callable[[Callable[[Path], tuple[list[str], str]]], Case]:
    """A case whose command must succeed; ``prepare`` returns the text stdout must hold."""

    def register(prepare: Callable[[Path], tuple[list[str], str]]) -> Case:
        built = Case(identifier, prepare, exit_code=0)
        GOOD_CASES.append(built)
        return built

    return register


@good("triage-utf8-bom")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "run_results.json", b"\xef\xbb\xbf" + json.dumps(REAL_RUN_RESULTS).encode())
    return ["triage", str(path)], "model.selfheal_demo.stg_orders (error)\n  class:       missing_column"


@good("triage-utf16-run-results")
def _(work: Path) -> tuple[list[str], str]:
    path = _write(work / "run_results.json", json.dumps(REAL_RUN_RESULTS).encode("utf-16"))
    return ["triage", str(path)], "model.selfheal_demo.stg_orders (error)\n  class:       missing_column"


@good("triage-utf16-log-without-bom")
def _(work: Path) -> tuple[list[str], str]:
    log = "10:11:12  Database Error in model stg_orders\n  000904 (42000): invalid identifier 'EMAIL'\n"
    path = _write(work / "dbt.log", log.encode("utf-16-le"))
    return ["triage", str(path)], "class:       missing_column"


@good("triage-dbt-json-log-lines")
def _(work: Path) -> tuple[list[str], str]:
    lines = [
        {"info": {"level": "info", "msg": "Running with dbt=1.11.2"}, "data": {}},
        {"info": {"level": "error", "msg": "000904 (42000): invalid identifier 'EMAIL'"}, "data": {}},
    ]
    path = _write(work / "dbt.log", "\n".join(json.dumps(line) for line in lines))
    return ["triage", str(path)], "class:       missing_column"


@good("triage-test-result-without-a-name")
def _(work: Path) -> tuple[list[str], str]:
    result = {"unique_id": "test", "status": "fail", "message": "Got 3 results, configured to fail if != 0"}
    path = _json(work / "run_results.json", _artifact("run-results", results=[result]))
    return ["triage", str(path)], "test (fail)"


@good("incident-with-a-hand-edited-triage")
def _(work: Path) -> tuple[list[str], str]:
    _valid_incident(work / "root")
    (record,) = (work / "root" / "incidents").glob("*/incident.json")
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "triage": {"failure_class": "missing_column", "root_cause": "x"}}))
    return ["incidents", "show", record.parent.name], "class:       missing_column"


@good("quarantine-by-url")
def _(work: Path) -> tuple[list[str], str]:
    relative = _incident_record(work / "root", "{oops")
    return [
        "artifacts",
        "quarantine",
        f"file://{(work / 'root' / relative).absolute()}",
    ], "incident.json.corrupt"


@good("quarantine-keeps-the-earlier-copy")
def _(work: Path) -> tuple[list[str], str]:
    relative = _incident_record(work / "root", "{second")
    _write(work / "root" / f"{relative}.corrupt", "{first")
    return ["artifacts", "quarantine", relative], "incident.json.corrupt-2"
