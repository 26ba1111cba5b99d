"""Fixtures of every unit test: artifact stores on both kinds of root, a folder (``file://``) and a bucket on a
loopback S3 server (``artifact_store`` runs a test on each)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactStore
from dev.s3 import S3Server, s3_server

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

from tests.support.stores import S3_CONN_ID


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 with a bucket, for the whole session."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_store(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """A store under a fresh prefix of the loopback bucket, through the connection :data:`S3_CONN_ID`."""
    for name, value in s3.environ(S3_CONN_ID).items():
        monkeypatch.setenv(name, value)
    return ArtifactStore(root=s3.root_url(), conn_id=S3_CONN_ID)


@pytest.fixture
def file_store(tmp_path: Path) -> ArtifactStore:
    """A store in a fresh temporary folder."""
    return ArtifactStore(root=f"file://{tmp_path}/artifacts", conn_id="")


@pytest.fixture(params=["file", "s3"])
def artifact_store(request: pytest.FixtureRequest) -> ArtifactStore:
    """Each test that uses it runs twice: on a ``file://`` root and on an ``s3://`` root."""
    store: ArtifactStore = request.getfixturevalue(f"{request.param}_store")
    return store
