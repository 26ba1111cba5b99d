"""Fixtures shared by the dbt hook tests: a Snowflake connection in the environment and a sandbox."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from airflow.models import Connection

from airflow_selfheal.hooks.sandbox import Sandbox

if TYPE_CHECKING:
    from pathlib import Path

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
CONN_ID = "sf_validation_unit"
PASSWORD = "s3cret-pw"


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> str:
    """A password connection to an endpoint nothing listens on; its database (production) is DEMO."""
    conn = Connection(
        conn_id=CONN_ID,
        conn_type="snowflake",
        login="etl",
        password=PASSWORD,
        schema="ANALYTICS",
        extra=json.dumps(
            {
                "account": "acme",
                "database": "DEMO",
                "warehouse": "WH",
                "role": "TRANSFORMER",
                "host": "127.0.0.1",
                "port": 8765,
                "protocol": "http",
            }
        ),
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn.as_json())
    return CONN_ID


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    live = tmp_path / "live"
    (live / "models").mkdir(parents=True)
    (live / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (live / "models" / "a.sql").write_text("select 1 as id\n")
    return Sandbox.create(live, "inc-0001", root=tmp_path / "work")
