"""The cosmos artifact callback: what it copies to the artifacts root after a failed dbt invocation, and when not.

The contexts and dbt project directories are those of ``dev/failure_contexts.py``. Each test runs on a folder
root and on an ``s3://`` root (moto on loopback).
"""

from __future__ import annotations

import copy
import json
import logging
from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
from airflow_selfheal.hooks.artifacts import ArtifactStoreError
from airflow_selfheal.notifications.failure_evidence import ARTIFACTS_FOLDER
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
    use_s3_artifacts_root,
    write_project,
)
from dev.s3 import overwrite

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_selfheal.hooks.artifacts import ArtifactStore


@pytest.fixture(params=["file", "s3"])
def artifacts(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ArtifactStore:
    """The configured artifacts root: a temporary folder, then a fresh prefix of the loopback bucket."""
    if request.param == "s3":
        return use_s3_artifacts_root(request.getfixturevalue("s3"), monkeypatch)
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
            artifacts.read_bytes(f"{key}/run_results.json")
            == (project / "target" / "run_results.json").read_bytes()
        )
        assert artifacts.read_text(f"{key}/compiled/{STG_ORDERS}.sql") == STG_ORDERS_SQL
        assert json.loads(artifacts.read_text(f"{key}/manifest.json")) == MANIFEST
        # Only the failed node's SQL, not every compiled file.
        assert artifacts.list_all(f"{key}/compiled") == [f"{STG_ORDERS}.sql"]

    def test_successful_run_copies_nothing(self, tmp_path: Path, artifacts: ArtifactStore) -> None:
        passing = copy.deepcopy(REAL_RUN_RESULTS)
        passing["results"][0].update(status="success", message="SUCCESS 1")
        project = write_project(tmp_path / "ok", passing)
        capture_dbt_artifacts(project, context=context(project))
        assert artifacts.folders("") == []

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
        assert artifacts.read_text(f"{prefix()}/run_results.json") == '{"results": ['

    def test_never_raises(
        self, tmp_path: Path, artifacts: ArtifactStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        project = write_project(tmp_path / "p")
        # No task instance: nothing to key the copy by. A missing folder: nothing to copy.
        capture_dbt_artifacts(project, context={})
        capture_dbt_artifacts(tmp_path / "absent", context=context(project))
        # A context whose task instance cannot be read at all.
        capture_dbt_artifacts(project, context={"ti": object(), "dag": object()})
        assert artifacts.folders("") == []
        assert "cannot key the dbt artifacts" in caplog.text


class TestCapturedOnce:
    """A try's artifacts are stored once: a callback run again for the same try finds them under the same key."""

    def test_same_try_again_is_a_quiet_no_op(
        self, project: Path, artifacts: ArtifactStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        capture_dbt_artifacts(project, context=context(project))
        first = {
            name: artifacts.read_bytes(f"{prefix()}/{name}") for name in ("run_results.json", "manifest.json")
        }
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="airflow_selfheal.callbacks.capture"):
            capture_dbt_artifacts(project, context=context(project))
        assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
        assert "Captured dbt artifacts ['run_results.json', " in caplog.text
        assert {name: artifacts.read_bytes(f"{prefix()}/{name}") for name in first} == first
        assert artifacts.list_all(f"{prefix()}/compiled") == [f"{STG_ORDERS}.sql"]

    def test_other_content_for_the_same_try_keeps_the_first_copy(
        self, tmp_path: Path, project: Path, artifacts: ArtifactStore, caplog: pytest.LogCaptureFixture
    ) -> None:
        capture_dbt_artifacts(project, context=context(project))
        first = artifacts.read_bytes(f"{prefix()}/run_results.json")
        rerun = copy.deepcopy(REAL_RUN_RESULTS)
        rerun["metadata"]["invocation_id"] = "another-invocation"
        other = write_project(tmp_path / "other", rerun)

        capture_dbt_artifacts(other, context=context(other))

        assert artifacts.read_bytes(f"{prefix()}/run_results.json") == first
        (warning,) = [record for record in caplog.records if record.levelno == logging.WARNING]
        message = warning.getMessage()
        assert message.startswith(artifacts.url(f"{prefix()}/run_results.json"))
        assert "the first copy is kept" in message
        # What did not differ was stored already, and nothing else was touched.
        assert json.loads(artifacts.read_text(f"{prefix()}/manifest.json")) == MANIFEST

    def test_a_partial_first_capture_is_completed(self, project: Path, artifacts: ArtifactStore) -> None:
        # A first callback that stopped after run_results.json (the worker died): the retry adds the rest.
        overwrite(
            artifacts, f"{prefix()}/run_results.json", (project / "target" / "run_results.json").read_bytes()
        )
        capture_dbt_artifacts(project, context=context(project))
        assert artifacts.read_text(f"{prefix()}/compiled/{STG_ORDERS}.sql") == STG_ORDERS_SQL
        assert json.loads(artifacts.read_text(f"{prefix()}/manifest.json")) == MANIFEST

    def test_a_store_that_refuses_writes_is_logged_not_raised(
        self,
        project: Path,
        artifacts: ArtifactStore,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        def refuse(self: ArtifactStore, relative: str, data: bytes) -> bool:
            raise ArtifactStoreError(f"artifacts root {self.root}: access denied")

        monkeypatch.setattr("airflow_selfheal.hooks.artifacts.ArtifactStore.create_bytes", refuse)
        capture_dbt_artifacts(project, context=context(project))
        assert "Could not capture the dbt artifacts" in caplog.text
        assert "access denied" in caplog.text
        assert artifacts.folders(ARTIFACTS_FOLDER) == []
