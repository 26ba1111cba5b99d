"""Production dbt with real dbt on a private embedded warehouse: a commit checked out, parsed, built, bounded.

The demo project is committed twice to a throwaway repository: ``v1`` as it is, ``v2`` with ``stg_orders`` broken.
The repository's own checkout is on ``v2`` and holds a stale ``target/manifest.json``, like a worker that has
not caught up; everything below reads and builds exactly the commit it checks out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dev.loader import load_raw
from dev.warehouse import running

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dev.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONN_ID = "selfheal_prod_dbt_test"
DEMO_PROJECT = Path(__file__).resolve().parents[2] / "dev" / "demo_project"
STG_ORDERS = "models/staging/stg_orders.sql"
STG_ORDERS_ID = "model.selfheal_demo.stg_orders"
SETUP_IDENTITY = ("-c", "user.name=Test Setup", "-c", "user.email=setup@example.com")


def git(cwd: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", *SETUP_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )
    return completed.stdout.strip()


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A private stand-in with DEMO.RAW loaded; the Airflow connection points at it."""
    with (
        running(tmp_path_factory.mktemp("prod-dbt-warehouse")) as warehouse,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri())
        with warehouse.connect() as conn:
            load_raw(conn)
        yield warehouse


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """The demo project in its own repository: ``(checkout, v1, v2)``, the checkout on the broken ``v2``."""
    root = tmp_path_factory.mktemp("prod-dbt-repo") / "shop"
    shutil.copytree(
        DEMO_PROJECT,
        root,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".selfheal", ".user.yml"),
    )
    git(root, "init", "-q", "-b", "main")
    (root / ".gitignore").write_text("target/\nlogs/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "v1")
    v1 = git(root, "rev-parse", "HEAD")
    model = root / STG_ORDERS
    model.write_text(model.read_text().replace("    customer_email,", "    customer_mail,"))
    git(root, "commit", "-q", "-am", "v2: a typo")
    v2 = git(root, "rev-parse", "HEAD")
    (root / "target").mkdir()
    (root / "target" / "manifest.json").write_text(json.dumps({"stale": True}))
    return root, v1, v2


def test_parse_reads_the_manifest_of_the_checked_out_commit(
    prod: Warehouse, repo: tuple[Path, str, str], tmp_path: Path
) -> None:
    from airflow_selfheal.hooks.dbt import DbtProductionHook
    from airflow_selfheal.hooks.git import checkout_at

    checkout, v1, _ = repo
    with checkout_at(checkout, v1) as project:
        manifest = DbtProductionHook(timeout=600).parse(
            project, snowflake_conn_id=CONN_ID, prod_database="DEMO", work_dir=tmp_path / "parse"
        )
        assert not (project / "target").exists()

    node = manifest["nodes"][STG_ORDERS_ID]
    assert "customer_email," in node["raw_code"]
    assert "customer_mail," not in node["raw_code"]
    assert (node["database"], node["schema"]) == ("DEMO", "ANALYTICS")
    assert manifest["sources"]["source.selfheal_demo.raw.orders"]["database"] == "DEMO"
    assert json.loads((tmp_path / "parse" / "target" / "manifest.json").read_text()) == manifest
    assert json.loads((checkout / "target" / "manifest.json").read_text()) == {"stale": True}


def test_build_a_commit_in_prod_then_a_broken_one(
    prod: Warehouse, repo: tuple[Path, str, str], tmp_path: Path
) -> None:
    from airflow_selfheal.hooks.dbt import DbtProductionHook
    from airflow_selfheal.hooks.git import checkout_at

    checkout, v1, v2 = repo
    hook = DbtProductionHook(timeout=600)
    with checkout_at(checkout, v1) as project:
        built = hook.build(
            project,
            select="selfheal_demo",  # the whole project: the tests of stg_orders relate it to its neighbours
            snowflake_conn_id=CONN_ID,
            prod_database="DEMO",
            manifest_dir=tmp_path / "manifest",
        )
    assert built.success, (built.error, built.logs_excerpt)
    assert (built.returncode, built.timed_out, built.error) == (0, False, None)
    statuses: dict[str, Any] = {node["unique_id"]: node["status"] for node in built.nodes}
    assert statuses[STG_ORDERS_ID] == "success"
    assert statuses["model.selfheal_demo.fct_orders"] == "success"
    assert any(unique_id.startswith("test.") for unique_id in statuses)
    assert built.manifest_path == tmp_path / "manifest" / "manifest.json"
    assert STG_ORDERS_ID in json.loads(built.manifest_path.read_text())["nodes"]
    assert "embedded" not in built.logs_excerpt  # the stand-in's password
    with prod.connect() as conn:
        rows = conn.cursor().execute("select count(*) from DEMO.ANALYTICS.STG_ORDERS").fetchone()
    assert rows == (200,)

    with checkout_at(checkout, v2) as project:
        broken = hook.build(project, select="stg_orders", snowflake_conn_id=CONN_ID, prod_database="DEMO")
    assert (broken.success, broken.returncode, broken.timed_out) == (False, 1, False)
    assert broken.error == f"dbt build failed: {STG_ORDERS_ID}"
    assert broken.logs_excerpt.startswith("Completed with 1 error"), broken.logs_excerpt
    assert "CUSTOMER_MAIL" in broken.logs_excerpt.upper()
    assert {node["unique_id"]: node["status"] for node in broken.nodes}[STG_ORDERS_ID] == "error"
    assert broken.manifest_path is None


def test_a_build_past_its_timeout_is_stopped(prod: Warehouse, repo: tuple[Path, str, str]) -> None:
    from airflow_selfheal.hooks.dbt import DbtProductionHook

    checkout, _, _ = repo
    result = DbtProductionHook().build(
        checkout, select="stg_orders+", snowflake_conn_id=CONN_ID, prod_database="DEMO", timeout=1
    )

    assert (result.success, result.returncode, result.timed_out) == (False, None, True)
    assert result.error == "dbt build did not finish within 1s; it was stopped"
    assert result.elapsed_seconds < 30
    assert not (checkout / "logs").exists()
