"""Pieces the end-to-end runs share: a synced DAG bundle, a UI user who answers the approval, prod fingerprints.

``dag.test()`` runs only DAGs that are serialized in the metadata DB, and the failure callback can trigger the repair
DAG only if it is there too, so every end-to-end run puts its DAG files in a bundle and syncs it first.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev.apiserver import answer_hitl, pending_hitl

if TYPE_CHECKING:
    from dev.warehouse import Warehouse


def bundle_config(name: str, folder: Path, *, with_dags_folder: bool = False) -> str:
    """``[dag_processor] dag_bundle_config_list`` naming ``folder`` (and, optionally, the default dags folder)."""
    bundles: list[dict[str, Any]] = [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder), "refresh_interval": 0},
        }
    ]
    if with_dags_folder:
        bundles.append(
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            }
        )
    return json.dumps(bundles)


def sync_bundle(name: str, folder: Path) -> Any:
    """
    Parse ``folder`` as the bundle ``name`` and write its DAGs to the metadata DB.

    ``AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST`` must already name the bundle (:func:`bundle_config`).

    :return: the ``BundleDagBag``; its ``dags`` run with ``dag.test()``.
    :raises RuntimeError: when a DAG file does not import, with Airflow's own errors.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name=name)
    if bag.import_errors:
        raise RuntimeError(f"DAG files in {folder} do not import: {bag.import_errors}")
    sync_bag_to_db(bag, name, None)
    return bag


def database_fingerprint(conn: Any, database: str) -> dict[str, str]:
    """A hash per table (columns and sorted rows) and per view definition of ``database``, keyed by kind and name."""
    cursor = conn.cursor()
    result = {}
    objects = cursor.execute(
        f'select TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE from "{database}".INFORMATION_SCHEMA.TABLES '
        "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA' order by 1, 2"
    ).fetchall()
    for schema, name, table_type in objects:
        columns = cursor.execute(
            "select COLUMN_NAME, DATA_TYPE, IS_NULLABLE, ORDINAL_POSITION, NUMERIC_PRECISION, NUMERIC_SCALE "
            f'from "{database}".INFORMATION_SCHEMA.COLUMNS where TABLE_SCHEMA = %s and TABLE_NAME = %s '
            "order by ORDINAL_POSITION",
            (schema, name),
        ).fetchall()
        rows: list[str] = []
        if table_type == "BASE TABLE":
            rows = sorted(
                repr(row) for row in cursor.execute(f'select * from "{database}"."{schema}"."{name}"')
            )
        result[f"{table_type}:{schema}.{name}"] = hashlib.sha256(repr((columns, rows)).encode()).hexdigest()
    for schema, name, definition in cursor.execute(
        f'select TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION from "{database}".INFORMATION_SCHEMA.VIEWS '
        "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
    ).fetchall():
        result[f"definition:{schema}.{name}"] = hashlib.sha256(str(definition).encode()).hexdigest()
    return result


class Approver:
    """
    Plays the Airflow UI user: waits for ``task_id`` of ``dag_id`` to ask, fingerprints prod, then answers.

    The answer is the PATCH the UI's buttons send, on a real api-server. ``outcome`` holds ``asked`` (the HITL
    detail the UI showed), ``prod_at_approval`` and ``response``, or ``error``.
    """

    def __init__(
        self,
        base_url: str,
        dag_id: str,
        warehouse: Warehouse,
        database: str,
        option: str = "Approve",
        task_id: str = "approve",
        timeout: float = 900.0,
    ) -> None:
        self.base_url, self.dag_id, self.warehouse, self.database = base_url, dag_id, warehouse, database
        self.option, self.task_id, self.timeout = option, task_id, timeout
        self.outcome: dict[str, Any] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.play, daemon=True)
        self.thread.start()

    def play(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline and not self.stop.is_set():
                for detail in pending_hitl(self.base_url, self.dag_id):
                    task_instance = detail.get("task_instance", {})
                    if task_instance.get("task_id") == self.task_id:
                        with self.warehouse.connect(self.database) as conn:
                            self.outcome["prod_at_approval"] = database_fingerprint(conn, self.database)
                        self.outcome["asked"] = detail
                        self.outcome["response"] = answer_hitl(
                            self.base_url, self.dag_id, task_instance["dag_run_id"], self.task_id, self.option
                        )
                        return
                time.sleep(1)
            if not self.stop.is_set():
                self.outcome["error"] = f"{self.task_id} never asked for input"
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            self.outcome["error"] = f"{type(exc).__name__}: {exc}"

    def finish(self) -> dict[str, Any]:
        """Stop waiting (the run ended without asking, e.g. it escalated) and return what happened."""
        self.stop.set()
        self.thread.join(timeout=30)
        return self.outcome


def dbt_command(project: Path, work: Path, *args: str) -> list[str]:
    """A plain dbt CLI command for ``project`` whose target and logs go to ``work`` (the project stays clean)."""
    dbt = Path(os.environ.get("SELFHEAL_DBT_EXECUTABLE") or Path(sys.executable).with_name("dbt"))
    command = [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    return [*command, "--target-path", str(work / "target"), "--log-path", str(work / "logs")]


README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str, replacements: dict[str, str] | None = None) -> str:
    """
    The Python block that follows ``<!-- marker -->`` in the README, with each ``old -> new`` replacement made.

    Each ``old`` must occur exactly once, so the README cannot drift away from what the tests run.
    """
    text = README.read_text(encoding="utf-8")
    tag = f"<!-- {marker} -->\n```python\n"
    start = text.index(tag) + len(tag)
    block = text[start : text.index("\n```", start)] + "\n"
    for old, new in (replacements or {}).items():
        if block.count(old) != 1:
            raise AssertionError(f"README block {marker!r} holds {old!r} {block.count(old)} times, not once")
        block = block.replace(old, new)
    return block
