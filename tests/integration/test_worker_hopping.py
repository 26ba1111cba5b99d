"""One repair run whose every task runs on another "worker": its own process, temp dir and project checkout.

Each step runs in a fresh ``python -m tests.support.step_worker`` process, in its own folder, with its own git
clone of the dbt project at its own path (none of them ever pulled after the promotion) and its own sandbox
root. The artifacts root is ``s3://`` on an S3-compatible server on loopback (moto's), and XComs are handed
from one step to the next by this test, as the metadata DB would. So a step that reads what an earlier step
left on its own disk, or builds a worker's stale checkout, fails here.

The path approve -> promote -> rerun -> accept_baseline must build exactly the promoted commit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from dev.loader import load_raw
from dev.project_repo import git, git_copy
from dev.s3 import s3_server
from dev.scenarios import SCENARIOS
from dev.warehouse import running
from tests.support.demo import dbt_build_prod
from tests.support.incidents import make_incident, rename_triage

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONN_ID = "selfheal_hopping_wh"
S3_CONN_ID = "selfheal_hopping_s3"
RUN_ID = "manual__2026-12-03T12:00:00+00:00"
APPROVAL = {"chosen_options": ["Approve"], "responded_by_user": {"id": "jane", "name": "Jane Doe"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Prod broken by an upstream rename, the project in git with a bare origin, and an S3 artifacts root."""
    root = tmp_path_factory.mktemp("hopping")
    with running(root / "warehouse") as warehouse, s3_server() as s3:
        with warehouse.connect() as conn:
            load_raw(conn)
        prod_work = root / "prod-build"
        dbt_build_prod(warehouse, prod_work)
        with warehouse.connect() as conn:
            SCENARIOS["rename_column"].apply(conn)
        project, origin = git_copy(root / "authoring")
        env = {
            **os.environ,
            f"AIRFLOW_CONN_{CONN_ID.upper()}": warehouse.airflow_conn_uri(),
            **s3.environ(S3_CONN_ID),
            "AIRFLOW__SELFHEAL__ARTIFACTS_ROOT": s3.root_url("hopping"),
            "AIRFLOW__SELFHEAL__ARTIFACTS_CONN_ID": S3_CONN_ID,
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        }
        yield {
            "root": root,
            "warehouse": warehouse,
            "s3": s3,
            "origin": origin,
            "base_sha": git(project, "rev-parse", "HEAD"),
            "manifest": prod_work / "target" / "manifest.json",
            "env": env,
        }


class Workers:
    """Runs each step on a new worker: a process in a folder of its own, with its own clone of the project."""

    def __init__(self, stack: dict[str, Any]) -> None:
        self.stack = stack
        self.xcoms: dict[str, Any] = {}
        self.states: dict[str, str] = {}
        self.workers: dict[str, Path] = {}
        self.projects: dict[str, Path] = {}

    def checkout(self, step: str) -> Path:
        folder = self.stack["root"] / f"worker-{len(self.workers) + 1}-{step}"
        folder.mkdir()
        project = folder / "deploy" / f"dbt-{step}"
        project.parent.mkdir()
        git(folder, "clone", "--quiet", str(self.stack["origin"]), str(project))
        # The deploy job's parse output: every worker has the manifest of the code it checked out.
        (project / "target").mkdir()
        shutil.copy(self.stack["manifest"], project / "target" / "manifest.json")
        self.workers[step] = folder
        self.projects[step] = project
        return project

    def run(self, step: str) -> Any:
        project = self.projects.get(step) or self.checkout(step)
        folder = project.parents[1]
        spec = {
            "step": step,
            "run_id": RUN_ID,
            "conf": {"incident": self.incident},
            "config": {
                "project_dir": str(project),
                "snowflake_conn_id": CONN_ID,
                "prod_database": "DEMO",
                "sandbox_root": str(folder / "sandboxes"),
                "baseline_name": "hopping_raw",
                "dbt_timeout": 900,
            },
            "xcoms": self.xcoms,
            "states": self.states,
            "result_path": str(folder / "result.json"),
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        env = {**self.stack["env"], "TMPDIR": str(folder / "tmp")}
        (folder / "tmp").mkdir()
        completed = subprocess.run(
            [sys.executable, "-m", "tests.support.step_worker", str(folder / "spec.json")],
            cwd=folder,
            env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True,
            text=True,
            check=False,
            timeout=1200,
        )
        assert completed.returncode == 0, f"{step} failed:\n{completed.stderr[-6000:]}"
        result = json.loads((folder / "result.json").read_text())
        self.xcoms[f"{step}|"] = result["return"]
        for key, value in result["pushed"].items():
            self.xcoms[f"{step}|{key}"] = value
        self.states[step] = "success"
        return result["return"]

    @property
    def incident(self) -> dict[str, Any]:
        return make_incident(triage=rename_triage())


def test_approve_promote_rerun_builds_the_promoted_sha_on_other_workers(stack: dict[str, Any]) -> None:
    workers = Workers(stack)
    # Every worker checked the project out before the run started, as a deployment does; none pulls later.
    for step in ("triage", "clone", "propose", "validate", "promote", "rerun", "accept_baseline", "cleanup"):
        workers.checkout(step)
    decided = workers.run("triage")
    assert decided["branch"] == "clone"
    workers.run("clone")
    assert workers.run("propose") == "validate"
    plan = workers.xcoms["propose|plan"]
    assert plan["base_sha"] == stack["base_sha"]
    assert workers.run("validate") == "page", workers.xcoms["validate|result"]["reason"]
    validated = workers.xcoms["validate|result"]
    assert validated["base_sha"] == stack["base_sha"]
    workers.xcoms["approve|"] = APPROVAL
    workers.states["approve"] = "success"

    promoted = workers.run("promote")
    sha = promoted["deployed_sha"]
    assert sha != stack["base_sha"]
    assert git(stack["origin"], "rev-parse", "main") == sha  # pushed to the remote every worker fetches from

    reran = workers.run("rerun")
    assert reran["success"] is True, reran["logs_excerpt"]
    assert reran["sha"] == sha
    # The re-run worker's own checkout still holds the old code: it built the promoted commit, not its checkout.
    rerun_checkout = workers.workers["rerun"] / "deploy" / "dbt-rerun"
    assert git(rerun_checkout, "rev-parse", "HEAD") == stack["base_sha"]
    assert (
        "email_address as customer_email"
        not in (rerun_checkout / "models/staging/stg_orders.sql").read_text()
    )
    with stack["warehouse"].connect() as conn:
        filled = (
            conn.cursor()
            .execute("select count(*) from DEMO.ANALYTICS.STG_ORDERS where CUSTOMER_EMAIL is not null")
            .fetchone()[0]
        )
    assert filled > 0  # prod now reads the renamed column through the fix

    accepted = workers.run("accept_baseline")
    assert (accepted["accepted"], accepted["sha"]) == (True, sha)

    outcome = workers.run("cleanup")
    assert outcome["outcome"] == "resolved"

    # Nothing was left on a worker's disk: every sandbox was removed, and the evidence is on S3.
    for folder in workers.workers.values():
        assert not any((folder / "sandboxes").rglob("dbt_project.yml")), folder
    client = stack["s3"].client()
    keys = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=stack["s3"].bucket, Prefix="hopping/"
        )
        for item in page.get("Contents", [])
    ]
    incident_id = decided["incident"]["incident_id"]
    assert any(key.startswith(f"hopping/incidents/{incident_id}/plans/") for key in keys)
    assert f"hopping/{validated['evidence_prefix']}/sandbox.json" in keys
    assert any(
        key.startswith(f"hopping/audit/{incident_id}/") for key in keys
    )  # the trail, written by every step
