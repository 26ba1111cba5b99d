"""DAG parsing must stay fast: importing the package must not pull in the heavy clients."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "dbt",
    "snowflake.connector",
    "langchain",
    "langchain_core",
    "sqlglot",
    "pandas",
    "duckdb",
    "fakesnow",
)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("airflow_selfheal", id="package"),
        pytest.param("airflow_selfheal.core", id="core"),
        pytest.param("airflow_selfheal.get_provider_info", id="provider-info"),
    ],
)
def test_import_pulls_in_no_heavy_client(module: str) -> None:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(json.loads(out))
    offenders = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert offenders == []


def test_provider_info_is_registered() -> None:
    from importlib.metadata import entry_points

    (entry_point,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.dist.name == "airflow-selfheal"
    ]
    info = entry_point.load()()
    assert info["package-name"] == "airflow-selfheal"
    assert info["versions"][0]
