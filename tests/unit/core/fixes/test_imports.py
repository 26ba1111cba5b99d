"""Importing the fix rules stays cheap: no module of the package loads sqlglot or Airflow."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("airflow_selfheal.core.fixes", id="fixes"),
        pytest.param("airflow_selfheal.core.rules", id="rules"),
    ],
)
def test_import_loads_neither_sqlglot_nor_airflow(module: str) -> None:
    import json
    import subprocess
    import sys

    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )
    assert [name for name in loaded if name.split(".")[0] in {"sqlglot", "airflow"}] == []


def test_no_module_of_the_package_loads_sqlglot_or_airflow() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import importlib, json, pkgutil, sys, airflow_selfheal.core.fixes as fixes\n"
        "for found in pkgutil.walk_packages(fixes.__path__, 'airflow_selfheal.core.fixes.'):\n"
        "    importlib.import_module(found.name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )
    assert {"airflow_selfheal.core.fixes.propose", "airflow_selfheal.core.fixes.rules.dedup"} <= set(loaded)
    assert [name for name in loaded if name.split(".")[0] in {"sqlglot", "airflow"}] == []
