"""The demo shop in the embedded warehouse: prod built by ``dbt build``, fingerprints of prod, project tree hashes.

Prod must be unchanged by everything but a promoted fix, so the repair tests compare :func:`fingerprint` before
and after, and :func:`tree_hash` of the live project.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev.e2e import database_fingerprint

if TYPE_CHECKING:
    from dev.warehouse import Warehouse

DEMO_PROJECT = Path(__file__).resolve().parents[2] / "dev" / "demo_project"


def fingerprint(conn: Any, database: str = "DEMO") -> dict[str, str]:
    """A hash per table (columns and sorted rows) and per view definition, keyed by kind and name.

    Views are not selected from: after the rename, prod's STG_ORDERS view no longer binds.
    """
    return database_fingerprint(conn, database)


def tree_hash(root: Path) -> str:
    """A hash of every file under ``root`` (names and contents), build output (``target``, ``logs``) left out."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_file() and relative.parts[0] not in ("target", "logs"):
            digest.update(f"{relative}\0".encode() + path.read_bytes())
    return digest.hexdigest()


def dbt_build_prod(warehouse: Warehouse, work: Path) -> list[dict[str, Any]]:
    """``dbt build`` of the demo project into DEMO with its own profile, in a subprocess like any deploy job."""
    env = {
        **os.environ,
        "SELFHEAL_WAREHOUSE_HOST": warehouse.host,
        "SELFHEAL_WAREHOUSE_PORT": str(warehouse.port),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    }
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt), "build", "--project-dir", str(DEMO_PROJECT), "--profiles-dir", str(DEMO_PROJECT)]
    command += ["--target-path", str(work / "target"), "--log-path", str(work / "logs"), "--quiet"]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return list(json.loads((work / "target" / "run_results.json").read_text())["results"])
