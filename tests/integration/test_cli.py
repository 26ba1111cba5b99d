"""``airflow-selfheal drift …`` on the embedded warehouse, as an on-call engineer would run it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from airflow_selfheal.cli import main
from dev.warehouse import Warehouse

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def raw(warehouse: Warehouse) -> Warehouse:
    from dev.loader import load_raw

    with warehouse.connect() as conn:
        load_raw(conn)
    return warehouse


def test_drift_cycle(raw: Warehouse, demo_manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dev.scenarios import SCENARIOS

    name = f"cli_{uuid.uuid4().hex[:6]}"
    common = ["--conn-id", "selfheal_warehouse", "--manifest", str(demo_manifest)]
    assert main(["drift", "check", name, *common]) == 0
    assert capsys.readouterr().out.startswith(f"{name}: no baseline")

    assert main(["drift", "snapshot", name, *common, "--accept", "--by", "oncall", "--reason", "first"]) == 0
    assert "accepted" in capsys.readouterr().out

    with raw.connect() as conn:
        SCENARIOS["drop_column"].apply(conn)
    try:
        assert main(["drift", "check", name, *common]) == 1
        out = capsys.readouterr().out
        assert "drift detected (1 change)" in out
        assert "raw.payments lost column PAYMENT_METHOD." in out
        assert main(["drift", "check", name, *common, "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        assert [e["kind"] for e in report["events"]] == ["column_removed"]
    finally:
        with raw.connect() as conn:
            SCENARIOS["drop_column"].reset(conn)

    assert main(["drift", "history", name]) == 0
    assert "by oncall" in capsys.readouterr().out


def test_bad_input_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "accept", "nobaseline", "v1"]) == 2
    assert "has no snapshot v1" in capsys.readouterr().err
    assert main(["drift", "check", "x", "--conn-id", "no_such_conn", "--tables", "A.B.C"]) == 2
    assert "no_such_conn" in capsys.readouterr().err
