"""The artifact store, each behaviour on a ``file://`` root and on an ``s3://`` root (moto on loopback)."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactCorruptError, ArtifactStore, ArtifactStoreError
from airflow_selfheal.hooks.artifacts import s3 as s3_backend
from dev.s3 import SECRET_ACCESS_KEY, overwrite
from tests.support.stores import S3_CONN_ID

if TYPE_CHECKING:
    from pathlib import Path

    from dev.s3 import S3Server

THREADS = 8


def race(store_factory: Any, relative: str, workers: int = THREADS) -> list[int]:
    """``workers`` threads, each with its own store, create ``relative`` at once; the indexes of the winners."""
    barrier = threading.Barrier(workers)
    winners: list[int] = []
    errors: list[BaseException] = []

    def create(index: int) -> None:
        store = store_factory()
        try:
            barrier.wait()
            if store.create_json(relative, {"writer": index, "pad": "x" * 2000}):
                winners.append(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(index,)) for index in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return winners


def same_root(store: ArtifactStore) -> Any:
    """A factory of stores on the same root, as separate workers would build them."""
    return lambda: ArtifactStore(root=store.root, conn_id=store.conn_id or "")


class TestCreateOnce:
    def test_create_is_exclusive(self, artifact_store: ArtifactStore) -> None:
        assert artifact_store.create_json("marks/a.json", {"n": 1}) is True
        assert artifact_store.create_json("marks/a.json", {"n": 2}) is False
        assert artifact_store.read_json("marks/a.json") == {"n": 1}
        assert artifact_store.exists("marks/a.json")
        assert not artifact_store.exists("marks/b.json")

    def test_bytes_and_text(self, artifact_store: ArtifactStore) -> None:
        assert artifact_store.create_bytes("logs/dbt.log", "naïve ✓\n".encode()) is True
        assert artifact_store.create_bytes("logs/dbt.log", b"other") is False
        assert artifact_store.read_bytes("logs/dbt.log") == "naïve ✓\n".encode()
        assert artifact_store.read_text("logs/dbt.log") == "naïve ✓\n"

    def test_threads_racing_make_one_winner_whose_content_is_stored(
        self, artifact_store: ArtifactStore
    ) -> None:
        for round_ in range(5):
            relative = f"race/{round_}.json"
            winners = race(same_root(artifact_store), relative)
            assert len(winners) == 1, winners
            assert artifact_store.read_json(relative)["writer"] == winners[0]

    def test_processes_racing_make_one_winner(
        self, artifact_store: ArtifactStore, request: pytest.FixtureRequest
    ) -> None:
        # The processes take their credentials from the environment (boto3's default chain): an Airflow
        # connection would cost each of them the import of Airflow, some ten seconds on a busy machine.
        environ = {}
        if artifact_store.root.startswith("s3://"):
            s3: S3Server = request.getfixturevalue("s3")
            environ = {
                "AWS_ACCESS_KEY_ID": s3.access_key_id,
                "AWS_SECRET_ACCESS_KEY": s3.secret_access_key,
                "AWS_DEFAULT_REGION": s3.region_name,
                "AWS_ENDPOINT_URL_S3": s3.endpoint_url,
            }
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(2)
        results = context.Queue()
        processes = [
            context.Process(
                target=create_in_process,
                args=(artifact_store.root, environ, "race/proc.json", index, barrier, results),
            )
            for index in range(2)
        ]
        for process in processes:
            process.start()
        outcomes = dict(results.get(timeout=120) for _ in processes)
        for process in processes:
            process.join(timeout=60)
        assert sorted(outcomes) == [0, 1]
        winners = [index for index, created in outcomes.items() if created is True]
        assert len(winners) == 1, outcomes
        assert artifact_store.read_json("race/proc.json")["writer"] == winners[0]

    def test_a_record_is_never_readable_half_written(self, artifact_store: ArtifactStore) -> None:
        big = {"rows": ["y" * 1000] * 3000}  # about 3 MB: written in many pieces
        expected = json.loads(json.dumps(big))
        seen: list[Any] = []
        stop = threading.Event()

        def read_while_writing() -> None:
            while not stop.is_set():
                for index in range(3):
                    relative = f"big/{index}.json"
                    if artifact_store.exists(relative):
                        seen.append(artifact_store.read_json(relative))  # never ArtifactCorruptError

        reader = threading.Thread(target=read_while_writing)
        reader.start()
        try:
            for index in range(3):
                assert artifact_store.create_json(f"big/{index}.json", big)
        finally:
            stop.set()
            reader.join()
        assert all(record == expected for record in seen)
        assert artifact_store.list("big") == ["0.json", "1.json", "2.json"]

    def test_path_traversal_and_empty_paths_are_refused(self, artifact_store: ArtifactStore) -> None:
        with pytest.raises(ValueError, match="must not contain"):
            artifact_store.create_json("../escape.json", {})
        with pytest.raises(ValueError, match="must not contain"):
            artifact_store.read_json("a/./b.json")
        with pytest.raises(ValueError, match="empty path"):
            artifact_store.create_json("/", {})


class TestRead:
    def test_missing_record_names_it(self, artifact_store: ArtifactStore) -> None:
        with pytest.raises(FileNotFoundError, match=r"nothing/here\.json does not exist"):
            artifact_store.read_json("nothing/here.json")

    def test_corrupt_record_names_file_and_recovery(self, artifact_store: ArtifactStore) -> None:
        artifact_store.create_bytes("h/bad.json", b"{not json")
        with pytest.raises(
            ArtifactCorruptError, match=r"h/bad\.json is not valid JSON.*quarantine h/bad\.json"
        ) as excinfo:
            artifact_store.read_json("h/bad.json")
        assert artifact_store.root in str(excinfo.value)
        moved = artifact_store.quarantine("h/bad.json")
        assert moved == artifact_store.url("h/bad.json.corrupt")
        assert artifact_store.list("h") == []
        assert artifact_store.list_all("h") == ["bad.json.corrupt"]
        assert artifact_store.read_bytes("h/bad.json.corrupt") == b"{not json"

    def test_quarantine_never_overwrites_an_earlier_one(self, artifact_store: ArtifactStore) -> None:
        artifact_store.create_bytes("h/bad.json", b"first")
        artifact_store.quarantine("h/bad.json")
        artifact_store.create_bytes("h/bad.json", b"second")
        assert artifact_store.quarantine("h/bad.json").endswith("h/bad.json.corrupt-2")
        assert artifact_store.read_bytes("h/bad.json.corrupt") == b"first"
        assert artifact_store.read_bytes("h/bad.json.corrupt-2") == b"second"

    def test_text_that_is_not_utf8_is_corrupt(self, artifact_store: ArtifactStore) -> None:
        artifact_store.create_bytes("h/x.sql", b"\xff\xfe")
        with pytest.raises(ArtifactCorruptError, match=r"h/x\.sql is not valid utf-8 text"):
            artifact_store.read_text("h/x.sql")

    def test_a_record_overwritten_behind_the_store_is_reported(self, artifact_store: ArtifactStore) -> None:
        artifact_store.create_json("h/a.json", {"ok": True})
        overwrite(artifact_store, "h/a.json", b'{"ok": tr')
        with pytest.raises(ArtifactCorruptError, match=r"h/a\.json is not valid JSON"):
            artifact_store.read_json("h/a.json")


class TestList:
    def test_list_is_sorted_and_missing_folder_is_empty(self, artifact_store: ArtifactStore) -> None:
        artifact_store.create_json("h/2.json", {})
        artifact_store.create_json("h/1.json", {})
        artifact_store.create_bytes("h/notes.txt", b"")
        artifact_store.create_json("h/deeper/3.json", {})
        assert artifact_store.list("h") == ["1.json", "2.json"]
        assert artifact_store.list_all("h") == ["1.json", "2.json", "notes.txt"]
        assert artifact_store.folders("h") == ["deeper"]
        assert artifact_store.folders("") == ["h"]
        assert artifact_store.list("nothing-here") == []
        assert artifact_store.folders("nothing-here") == []

    def test_many_records_are_all_listed(self, artifact_store: ArtifactStore) -> None:
        for index in range(25):
            artifact_store.create_json(f"many/{index:03d}.json", {})
        assert artifact_store.list("many") == [f"{index:03d}.json" for index in range(25)]


class TestLocalRoot:
    def test_plain_folder_and_file_url_are_the_same_root(self, tmp_path: Path) -> None:
        ArtifactStore(root=str(tmp_path / "a"), conn_id="").create_json("x/1.json", {"n": 1})
        assert ArtifactStore(root=f"file://{tmp_path}/a", conn_id="").read_json("x/1.json") == {"n": 1}
        assert (tmp_path / "a" / "x" / "1.json").is_file()

    def test_a_failed_write_leaves_nothing_behind(
        self, file_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        def disk_full(descriptor: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="No space left"):
            file_store.create_json("h/a.json", {"n": 1})
        monkeypatch.undo()
        assert not file_store.exists("h/a.json")
        assert [path.name for path in (tmp_path / "artifacts" / "h").iterdir()] == []
        assert file_store.create_json("h/a.json", {"n": 2}) is True

    def test_path_still_works_for_local_roots(self, file_store: ArtifactStore) -> None:
        file_store.create_json("h/a.json", {"n": 1})
        assert json.loads(file_store.path("h/a.json").read_text()) == {"n": 1}
        with pytest.raises(ValueError, match="must not contain"):
            file_store.path("../escape.json")

    def test_default_root_is_under_airflow_home(self) -> None:
        assert ArtifactStore().root.startswith(f"file://{os.environ['AIRFLOW_HOME']}")

    def test_other_schemes_are_refused_with_the_fix(self) -> None:
        with pytest.raises(ArtifactStoreError, match=r"gs:// is not supported.*s3://bucket/prefix"):
            ArtifactStore(root="gs://bucket/selfheal", conn_id="")


class TestS3Root:
    def test_records_are_objects_under_the_prefix(self, s3: S3Server, s3_store: ArtifactStore) -> None:
        s3_store.create_json("incidents/a.json", {"n": 1})
        prefix = s3_store.root.split("/", 3)[3]
        head = s3.client().head_object(Bucket=s3.bucket, Key=f"{prefix}/incidents/a.json")
        assert head["ContentType"] == "application/json"
        assert s3_store.url("incidents/a.json") == f"s3://{s3.bucket}/{prefix}/incidents/a.json"

    def test_path_is_refused(self, s3_store: ArtifactStore) -> None:
        with pytest.raises(ArtifactStoreError, match="local roots only"):
            s3_store.path("a.json")

    def test_a_retried_write_that_was_stored_is_still_this_writers_win(
        self, s3_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class Token:
            hex = "same-writer"

        monkeypatch.setattr(s3_backend.uuid, "uuid4", Token)
        assert s3_store.create_json("a.json", {"n": 1}) is True
        # The SDK's retry of a request whose first try was stored meets its own object (412).
        assert s3_store.create_json("a.json", {"n": 1}) is True
        monkeypatch.undo()
        assert s3_store.create_json("a.json", {"n": 2}) is False

    def test_a_conflicting_concurrent_write_is_retried(
        self, s3_store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from botocore.exceptions import ClientError

        client = s3_store.backend.client()  # type: ignore[attr-defined]
        real_put = client.put_object
        calls: list[str] = []

        def put_object(**kwargs: Any) -> Any:
            calls.append(kwargs["Key"])
            if len(calls) == 1:
                error = {"Code": "ConditionalRequestConflict", "Message": "in flight"}
                raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 409}}, "PutObject")
            return real_put(**kwargs)

        monkeypatch.setattr(client, "put_object", put_object)
        monkeypatch.setattr(s3_backend, "CONFLICT_BACKOFF_SECONDS", 0)
        assert s3_store.create_json("a.json", {"n": 1}) is True
        assert len(calls) == 2
        assert s3_store.read_json("a.json") == {"n": 1}

    def test_undefined_connection_names_root_connection_and_fix(self, s3: S3Server) -> None:
        store = ArtifactStore(root=s3.root_url("x"), conn_id="selfheal_nowhere")
        with pytest.raises(ArtifactStoreError) as excinfo:
            store.create_json("a.json", {})
        message = str(excinfo.value)
        assert f"s3://{s3.bucket}/x" in message
        assert "'selfheal_nowhere' ([selfheal] artifacts_conn_id) is not defined" in message
        assert "login: access key id, password: secret access key" in message

    def test_missing_bucket_is_named_and_no_secret_leaks(
        self, s3: S3Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        for name, value in s3.environ(S3_CONN_ID).items():
            monkeypatch.setenv(name, value)
        store = ArtifactStore(root="s3://selfheal-no-such-bucket/p", conn_id=S3_CONN_ID)
        with (
            caplog.at_level("DEBUG", logger="airflow_selfheal"),
            pytest.raises(ArtifactStoreError) as excinfo,
        ):
            store.create_json("a.json", {})
        message = str(excinfo.value)
        assert "s3://selfheal-no-such-bucket/p" in message
        assert "bucket 'selfheal-no-such-bucket' does not exist" in message
        assert f"connection {S3_CONN_ID!r}" in message
        assert s3.endpoint_url in message
        assert SECRET_ACCESS_KEY not in message
        assert SECRET_ACCESS_KEY not in caplog.text

    def test_half_a_key_pair_is_refused(self, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
        connection = json.loads(s3.connection_json())
        del connection["password"]
        monkeypatch.setenv("AIRFLOW_CONN_SELFHEAL_HALF", json.dumps(connection))
        with pytest.raises(ArtifactStoreError, match="needs both a login .* and a password"):
            ArtifactStore(root=s3.root_url(), conn_id="selfheal_half").exists("a.json")

    def test_without_a_connection_boto3_default_chain_is_used(
        self, s3: S3Server, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_access_key)
        monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region_name)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.endpoint_url)
        store = ArtifactStore(root=s3.root_url(), conn_id="")
        assert store.create_json("a.json", {"n": 1}) is True
        assert store.read_json("a.json") == {"n": 1}

    def test_boto3_is_not_imported_to_build_a_store(self) -> None:
        code = (
            "import sys; from airflow_selfheal.hooks.artifacts import ArtifactStore; "
            "ArtifactStore(root='s3://bucket/p', conn_id='x'); print('boto3' in sys.modules)"
        )
        import subprocess
        import sys

        answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert answer.stdout.strip() == "False"


def create_in_process(
    root: str, environ: dict[str, str], relative: str, index: int, barrier: Any, results: Any
) -> None:
    """One of the racing processes: build a store, wait for the other, create, report."""
    os.environ.update(environ)
    store = ArtifactStore(root=root, conn_id="")
    store.exists(relative)  # connect before the race starts
    barrier.wait(timeout=60)
    try:
        results.put((index, store.create_json(relative, {"writer": index})))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((index, repr(exc)))
