from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore
from airflow_selfheal.records.baselines import BaselineError, BaselineStore


@pytest.fixture
def baselines(tmp_path: Path) -> BaselineStore:
    return BaselineStore("shop_raw", ArtifactStore(root=str(tmp_path / "root"), conn_id=""))


class TestBaselineStore:
    def test_no_baseline_until_accepted(self, baselines: BaselineStore) -> None:
        baselines.record({"tables": []}, "a" * 64)
        assert baselines.current() is None

    def test_accept_keeps_history(self, baselines: BaselineStore) -> None:
        first = baselines.record({"tables": ["v1"]}, "a" * 64)
        baselines.accept(first, accepted_by="dag", reason="initial")
        second = baselines.record({"tables": ["v2"]}, "b" * 64)
        baselines.accept(second, accepted_by="alice", reason="promoted fix")
        assert baselines.current() == (second, {"tables": ["v2"]})
        assert [r["version"] for r in baselines.history()] == [first, second]
        assert baselines.snapshot(first) == {"tables": ["v1"]}

    def test_concurrent_writers_lose_nothing(self, baselines: BaselineStore) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            versions = list(pool.map(lambda i: baselines.record({"i": i}, f"{i:064x}"), range(40)))
        assert len(set(versions)) == 40
        assert sorted(baselines.versions()) == sorted(versions)

    def test_accepting_unknown_version_is_refused(self, baselines: BaselineStore) -> None:
        with pytest.raises(BaselineError, match="has no snapshot nope"):
            baselines.accept("nope", accepted_by="x", reason="y")

    def test_corrupt_snapshot_is_reported_not_reset(self, baselines: BaselineStore) -> None:
        version = baselines.record({"tables": []}, "c" * 64)
        baselines.accept(version, accepted_by="dag", reason="initial")
        baselines.store.path(f"baselines/shop_raw/snapshots/{version}.json").write_text("{oops")
        with pytest.raises(ArtifactCorruptError, match="quarantine"):
            baselines.current()
        assert baselines.versions() == [version]

    def test_bad_name(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="baseline name"):
            BaselineStore("../x", ArtifactStore(root=str(tmp_path), conn_id=""))
