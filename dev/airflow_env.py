"""One place that says how the demo and the tests configure Airflow, cosmos and dbt on the embedded stack.

Everything must be in the environment before ``airflow`` is first imported, because Airflow reads its
configuration at import time. Nothing here reaches the internet: telemetry and usage stats are off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dev.warehouse import Warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
DAGS_FOLDER = REPO_ROOT / "dags"
DEMO_PROJECT = REPO_ROOT / "dev" / "demo_project"
# The second dev project, of another shape (see dev/projects.py).
RIDES_PROJECT = REPO_ROOT / "dev" / "rides_project"
WAREHOUSE_CONN_ID = "selfheal_warehouse"


def airflow_environ(
    airflow_home: Path, warehouse: Warehouse, project_dir: Path = DEMO_PROJECT
) -> dict[str, str]:
    """Environment variables for an isolated Airflow on SQLite that talks to ``warehouse``.

    :param project_dir: the dbt project the pipeline and repair DAGs run (default the demo shop).
    """
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__PROPAGATE_LOGS": "False",
        "AIRFLOW__COSMOS__ENABLE_CACHE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "SCARF_ANALYTICS": "false",
        "SCARF_NO_ANALYTICS": "true",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_PROFILES_DIR": str(project_dir),
        "SELFHEAL_WAREHOUSE_HOST": warehouse.host,
        "SELFHEAL_WAREHOUSE_PORT": str(warehouse.port),
        "SELFHEAL_DBT_PROJECT_DIR": str(project_dir),
        # The demo's names for the shipped DAG files (dags/), which derive their own from the project otherwise.
        "SELFHEAL_PIPELINE_DAG_ID": "shop_pipeline",
        "SELFHEAL_DBT_GROUP_ID": "shop",
        "SELFHEAL_BASELINE_NAME": "shop_raw",
        "SELFHEAL_PROD_DATABASE": "DEMO",
        "SELFHEAL_WAREHOUSE_CONN_ID": WAREHOUSE_CONN_ID,
        "SELFHEAL_DBT_SOURCE_RENDERING": "none",
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}": warehouse.airflow_conn_uri(),
    }


def apply(environ: dict[str, str]) -> None:
    """Put ``environ`` into this process; refuses if Airflow was already imported with another config."""
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != environ["AIRFLOW_HOME"]:
        raise RuntimeError("configure the environment before the first `import airflow`")
    os.environ.update(environ)
    Path(environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)


def migrate_db() -> None:
    """Create the metadata DB in a subprocess, so this process' Airflow import sees a ready database."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        env=os.environ.copy(),
    )


def dbt_parse(project_dir: Path = DEMO_PROJECT) -> Path:
    """Write ``target/manifest.json`` with a real ``dbt parse``; cosmos renders the DAG from it.

    Test workers run in parallel and may parse the same project at once, and a DAG file may read the manifest
    meanwhile: one parse at a time (a lock file), into a private folder, then an atomic rename into place.
    """
    import fcntl
    import tempfile

    dbt = Path(sys.executable).with_name("dbt")
    target = project_dir / "target"
    target.mkdir(exist_ok=True)
    with (target / ".parse.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(prefix=".parse-", dir=target) as private:
            command = [
                str(dbt),
                "parse",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
            ]
            command += ["--target-path", private, "--quiet"]
            subprocess.run(command, check=True, env=os.environ.copy())
            for name in ("manifest.json", "partial_parse.msgpack", "semantic_manifest.json"):
                if (Path(private) / name).exists():
                    os.replace(Path(private) / name, target / name)
    return target / "manifest.json"


def task_result(dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
    """A finished task's return value (or its XCom ``key``), read from the metadata DB as the UI does."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=run_id, key=key, task_ids=task_id, dag_ids=dag_id)
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)
