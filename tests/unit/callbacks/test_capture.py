"""The cosmos artifact callback: what it copies to the artifacts root after a failed dbt invocation, and when not.

The contexts and dbt project directories are those of ``dev/failure_contexts.py``.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
from dev.failure_contexts import (
    DAG_ID,
    MANIFEST,
    REAL_RUN_RESULTS,
    STG_ORDERS,
    STG_ORDERS_SQL,
    TASK_ID,
    FakeTaskInstance,
    context,
    prefix,
    use_artifacts_root,
    write_project,
)

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_selfheal.hooks.artifacts import ArtifactStore


@pytest.fixture
def artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    return use_artifacts_root(tmp_path, monkeypatch)


@pytest.fixture
def project(tmp_path: Path, artifacts: ArtifactStore) -> Path:
    return write_project(tmp_path / "tmp_project")


class TestCaptureDbtArtifacts:
    def test_failed_run_copies_run_results_compiled_sql_and_manifest(
        self, project: Path, artifacts: ArtifactStore
    ) -> None:
        capture_dbt_artifacts(str(project), context=context(project))
        key = prefix()
        assert key.startswith(f"dbt_artifacts/{DAG_ID}/manual__2026-03-01T06_00_00_00_00-")
        assert key.endswith(f"/{TASK_ID}/-1/1")
        assert (
            artifacts.path(f"{key}/run_results.json").read_bytes()
            == (project / "target" / "run_results.json").read_bytes()
        )
        assert artifacts.path(f"{key}/compiled/{STG_ORDERS}.sql").read_text() == STG_ORDERS_SQL
        assert json.loads(artifacts.path(f"{key}/manifest.json").read_text()) == MANIFEST
        # Only the failed node's SQL, not every compiled file.
        assert [p.name for p in artifacts.path(f"{key}/compiled").iterdir()] == [f"{STG_ORDERS}.sql"]

    def test_successful_run_copies_nothing(self, tmp_path: Path, artifacts: ArtifactStore) -> None:
        passing = copy.deepcopy(REAL_RUN_RESULTS)
        passing["results"][0].update(status="success", message="SUCCESS 1")
        project = write_project(tmp_path / "ok", passing)
        capture_dbt_artifacts(project, context=context(project))
        assert not artifacts.path("dbt_artifacts").exists()

    def test_each_try_has_its_own_folder(self, project: Path, artifacts: ArtifactStore) -> None:
        second = FakeTaskInstance(try_number=2)
        capture_dbt_artifacts(project, context=context(project))
        capture_dbt_artifacts(project, context=context(project, ti=second))
        assert artifacts.exists(f"{prefix()}/run_results.json")
        assert artifacts.exists(f"{prefix(second)}/run_results.json")
        assert prefix() != prefix(second)

    def test_corrupt_run_results_is_kept_as_evidence(self, tmp_path: Path, artifacts: ArtifactStore) -> None:
        project = write_project(tmp_path / "p", '{"results": [')
        capture_dbt_artifacts(project, context=context(project))
        assert artifacts.path(f"{prefix()}/run_results.json").read_text() == '{"results": ['

    def test_never_raises(
        self, tmp_path: Path, artifacts: ArtifactStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        project = write_project(tmp_path / "p")
        # No task instance: nothing to key the copy by. A missing folder: nothing to copy.
        capture_dbt_artifacts(project, context={})
        capture_dbt_artifacts(tmp_path / "absent", context=context(project))
        # A context whose task instance cannot be read at all.
        capture_dbt_artifacts(project, context={"ti": object(), "dag": object()})
        assert not artifacts.path("dbt_artifacts").exists()
        assert "cannot key the dbt artifacts" in caplog.text
