"""The records' tests run on both kinds of root too: the fixtures of the artifact store's tests."""

from __future__ import annotations

from tests.unit.hooks.conftest import artifact_store, file_store, s3, s3_store

__all__ = ["artifact_store", "file_store", "s3", "s3_store"]
