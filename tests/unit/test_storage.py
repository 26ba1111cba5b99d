from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(root=f"file://{tmp_path}/artifacts", conn_id="")


class TestArtifactStore:
    def test_create_is_exclusive(self, store: ArtifactStore) -> None:
        assert store.create_json("marks/a.json", {"n": 1}) is True
        assert store.create_json("marks/a.json", {"n": 2}) is False
        assert store.read_json("marks/a.json") == {"n": 1}

    def test_list_is_sorted_and_missing_folder_is_empty(self, store: ArtifactStore) -> None:
        store.create_json("h/2.json", {})
        store.create_json("h/1.json", {})
        assert store.list("h") == ["1.json", "2.json"]
        assert store.list("nothing-here") == []

    def test_corrupt_record_names_file_and_recovery(self, store: ArtifactStore) -> None:
        store.create_json("h/bad.json", {})
        store.path("h/bad.json").write_text("{not json")
        with pytest.raises(
            ArtifactCorruptError, match=r"bad\.json is not valid JSON.*quarantine h/bad\.json"
        ):
            store.read_json("h/bad.json")
        moved = store.quarantine("h/bad.json")
        assert moved.endswith("bad.json.corrupt")
        assert store.list("h") == []

    def test_parent_traversal_is_refused(self, store: ArtifactStore) -> None:
        with pytest.raises(ValueError, match="must not contain"):
            store.path("../escape.json")

    def test_default_root_is_under_airflow_home(self) -> None:
        import os

        assert str(ArtifactStore().root).startswith(f"file://{os.environ['AIRFLOW_HOME']}")
