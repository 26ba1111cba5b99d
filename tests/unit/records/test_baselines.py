from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airflow_selfheal.core.schema import RecordVersionError
from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore
from airflow_selfheal.records import baselines as baselines_module
from airflow_selfheal.records.baselines import BaselineError, BaselineStore
from dev.s3 import overwrite


@pytest.fixture
def baselines(artifact_store: ArtifactStore) -> BaselineStore:
    """Each test runs on a file:// root and on an s3:// root."""
    return BaselineStore("shop_raw", artifact_store)


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
        overwrite(baselines.store, f"baselines/shop_raw/snapshots/{version}.json", b"{oops")
        with pytest.raises(ArtifactCorruptError, match="quarantine"):
            baselines.current()
        assert baselines.versions() == [version]

    @pytest.mark.parametrize(
        ("record", "problem"),
        [
            pytest.param(
                {"version": "v1"}, "its 'accepted_by', 'accepted_at', 'reason' are missing", id="fields"
            ),
            pytest.param(
                {"version": 1, "accepted_by": "a", "accepted_at": "t", "reason": "r"},
                "its 'version' is",
                id="type",
            ),
            pytest.param([], "it is a JSON list, not an object", id="list"),
        ],
    )
    def test_a_malformed_acceptance_names_the_record_and_the_fix(
        self, baselines: BaselineStore, record: object, problem: str
    ) -> None:
        # Before, `drift history` printed "error: 'accepted_by'" (a KeyError's repr).
        baselines.store.create_json("baselines/shop_raw/accepted/v1.json", record)
        with pytest.raises(BaselineError, match=rf"accepted/v1\.json is malformed \({problem}.*quarantine"):
            baselines.history()

    def test_a_snapshot_that_is_not_one_names_the_record_and_the_fix(self, baselines: BaselineStore) -> None:
        version = baselines.record({"captured_at": "2026-03-01T06:00:00+00:00"}, "e" * 64)
        baselines.accept(version, accepted_by="dag", reason="initial")
        with pytest.raises(
            ArtifactCorruptError,
            match=rf"snapshots/{version}\.json is not a schema snapshot \(its 'tables' is missing\).*"
            r"quarantine.*then accept another version with `airflow-selfheal drift accept shop_raw",
        ):
            baselines.current_snapshot()

    def test_the_current_snapshot_is_a_schema_snapshot(self, baselines: BaselineStore) -> None:
        assert baselines.current_snapshot() is None
        snapshot = {"tables": [], "captured_at": "2026-03-01T06:00:00+00:00", "source": "information_schema"}
        version = baselines.record(snapshot, "f" * 64)
        baselines.accept(version, accepted_by="dag", reason="initial")
        current = baselines.current_snapshot()
        assert current is not None
        assert (current[0], current[1].tables) == (version, ())

    def test_a_version_that_is_a_path_is_refused(self, baselines: BaselineStore) -> None:
        with pytest.raises(BaselineError, match=r"'\.\./x' is not a version id"):
            baselines.snapshot("../x")

    def test_bad_name(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="baseline name"):
            BaselineStore("../x", ArtifactStore(root=str(tmp_path), conn_id=""))

    def test_records_carry_their_schema_version(self, baselines: BaselineStore) -> None:
        version = baselines.record({"tables": []}, "d" * 64)
        record = baselines.accept(version, accepted_by="dag", reason="initial")
        accepted = baselines.store.list("baselines/shop_raw/accepted")[0]

        assert (
            baselines.store.read_json(f"baselines/shop_raw/snapshots/{version}.json")["schema_version"] == 1
        )
        assert baselines.store.read_json(f"baselines/shop_raw/accepted/{accepted}") == {
            **record,
            "schema_version": 1,
        }
        assert baselines.history() == [record]
        assert baselines.current() == (version, {"tables": []})

    def test_a_snapshot_of_a_newer_release_is_refused(self, baselines: BaselineStore) -> None:
        baselines.store.create_json(
            "baselines/shop_raw/snapshots/v9.json", {"tables": [], "schema_version": 2}
        )

        with pytest.raises(
            RecordVersionError,
            match=r"snapshots/v9\.json was written with baseline_snapshot schema version 2",
        ):
            baselines.snapshot("v9")

    def test_a_taken_name_draws_another(
        self, baselines: BaselineStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        names = iter(["taken", "taken", "free"])
        baselines.store.create_json("baselines/shop_raw/snapshots/taken.json", {"tables": ["first"]})
        monkeypatch.setattr(baselines_module, "new_version", lambda *args: next(names))

        assert baselines.record({"tables": ["second"]}, "e" * 64) == "free"
        assert baselines.snapshot("taken") == {"tables": ["first"]}
