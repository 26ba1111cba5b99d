from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings

from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.hooks.sandbox import Sandbox, SandboxError
from tests.unit.core.fixes.hostile import allow_lists, escape, raw_paths

STG = "models/staging/stg_orders.sql"
ALLOWED = ["models/**", "tests/selfheal_guard_*.sql"]


def _write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        location = root / path
        location.parent.mkdir(parents=True, exist_ok=True)
        location.write_text(text)


def _tree(root: Path) -> dict[str, str]:
    """Every file and symlink under root: relative path -> content hash, or '-> target' for links."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "live"
    _write(
        root,
        {
            "dbt_project.yml": "name: shop\nprofile: shop\n",
            "profiles.yml": "shop:\n  outputs:\n    prod:\n      password: hunter2\n",
            ".user.yml": "id: 1\n",
            STG: "select\n    order_id,\n    customer_email\nfrom raw\n",
            "models/staging/_sources.yml": "version: 2\n",
            "models/logs/log_events.sql": "select 1 as id\n",
            "tests/assert_x.sql": "select 1 where false\n",
            ".selfheal/rules.yml": "version: 1\n",
            "target/manifest.json": "{}",
            "logs/dbt.log": "log",
            "dbt_packages/utils/macros/x.sql": "macro",
            ".git/HEAD": "ref: refs/heads/main\n",
            "models/.git/HEAD": "nested",
        },
    )
    # Links inside the project, one relative and one absolute: both must resolve inside the copy.
    (root / "models/alias.sql").symlink_to("staging/stg_orders.sql")
    (root / "models/absolute_alias.sql").symlink_to(root / STG)
    return root


@pytest.fixture
def sandbox(project: Path, tmp_path: Path) -> Sandbox:
    return Sandbox.create(project, "inc-0001", root=tmp_path / "work")


class TestCreate:
    def test_copy_skips_generated_files_credentials_and_git(self, sandbox: Sandbox, tmp_path: Path) -> None:
        assert sandbox.project_dir == tmp_path / "work" / ".selfheal" / "runs" / "inc-0001" / "project"
        assert sorted(_tree(sandbox.project_dir)) == [
            ".selfheal/rules.yml",
            "dbt_project.yml",
            "models/absolute_alias.sql",
            "models/alias.sql",
            "models/logs/log_events.sql",
            "models/staging/_sources.yml",
            "models/staging/stg_orders.sql",
            "tests/assert_x.sql",
        ]

    def test_links_inside_the_project_point_inside_the_copy(self, sandbox: Sandbox) -> None:
        copy = sandbox.project_dir
        for link in ("models/alias.sql", "models/absolute_alias.sql"):
            assert (copy / link).is_symlink()
            assert Path(os.path.realpath(copy / link)) == (copy / STG).resolve()
        assert os.readlink(copy / "models/absolute_alias.sql") == "staging/stg_orders.sql"

    @pytest.mark.parametrize(
        "target",
        [
            pytest.param("/etc/passwd", id="absolute-outside"),
            pytest.param("../../outside.sql", id="relative-outside"),
        ],
    )
    def test_symlink_escaping_the_project_is_refused_and_nothing_is_left(
        self, project: Path, tmp_path: Path, target: str
    ) -> None:
        (tmp_path / "outside.sql").write_text("secret")
        (project / "models/escape.sql").symlink_to(target)
        with pytest.raises(SandboxError, match=r"models/escape\.sql is a symlink to .*outside the project"):
            Sandbox.create(project, "inc-0002", root=tmp_path / "work")
        assert not (tmp_path / "work/.selfheal/runs/inc-0002").exists()

    def test_root_inside_the_project_does_not_copy_earlier_runs(self, project: Path) -> None:
        first = Sandbox.create(project, "inc-a", root=project)
        second = Sandbox.create(project, "inc-b", root=project)
        assert second.project_dir == project / ".selfheal/runs/inc-b/project"
        assert not (second.project_dir / ".selfheal/runs").exists()
        assert (second.project_dir / ".selfheal/rules.yml").is_file()
        assert _tree(first.project_dir) == _tree(second.project_dir)

    def test_existing_sandbox_is_refused_unless_replaced(self, sandbox: Sandbox, project: Path) -> None:
        sandbox.write_files({STG: "select 2\n"}, ALLOWED)
        root = sandbox.run_dir.parents[2]
        with pytest.raises(SandboxError, match="already exists"):
            Sandbox.create(project, "inc-0001", root=root)
        fresh = Sandbox.create(project, "inc-0001", root=root, replace=True)
        assert fresh.changed_files == []
        assert fresh.read(STG) == (project / STG).read_text()

    @pytest.mark.parametrize(
        "incident_id",
        [pytest.param("../x", id="dotdot"), pytest.param("a/b", id="slash"), pytest.param("", id="empty")],
    )
    def test_bad_incident_id_is_refused(self, project: Path, tmp_path: Path, incident_id: str) -> None:
        with pytest.raises(SandboxError, match="incident id"):
            Sandbox.create(project, incident_id, root=tmp_path)
        assert not (tmp_path / ".selfheal").exists()

    def test_folder_without_dbt_project_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(SandboxError, match="no dbt_project.yml"):
            Sandbox.create(tmp_path, "inc-1", root=tmp_path / "work")


class TestWriteFiles:
    @pytest.mark.parametrize(
        ("path", "fragment"),
        [
            pytest.param("../x", "must not contain '..'", id="parent"),
            pytest.param("models/../../x.sql", "must not contain '..'", id="parent-inside"),
            pytest.param("/etc/passwd", "is absolute", id="absolute"),
            pytest.param("C:/x.sql", "is absolute", id="drive"),
            pytest.param("models\\x.sql", "backslashes", id="backslash"),
            pytest.param("", "non-empty", id="empty"),
            pytest.param("seeds/raw.csv", "outside the allowed paths", id="outside-globs"),
            pytest.param("profiles.yml", "writable floor refuses 'profiles.yml'", id="profiles"),
            pytest.param("tests/assert_x.sql", "outside the allowed paths", id="non-guard-test"),
            pytest.param("models/alias.sql", "goes through a symlink", id="symlink"),
            pytest.param("models/staging", "is a directory", id="directory"),
        ],
    )
    def test_refused_paths_write_nothing(
        self, sandbox: Sandbox, project: Path, path: str, fragment: str
    ) -> None:
        before_live, before_copy = _tree(project), _tree(sandbox.project_dir)
        with pytest.raises(SandboxError, match=fragment):
            sandbox.write_files({"models/ok.sql": "select 1\n", path: "x"}, ALLOWED)
        assert _tree(sandbox.project_dir) == before_copy
        assert _tree(project) == before_live
        assert sandbox.changed_files == []

    @pytest.mark.parametrize(
        ("path", "allowed", "fragment"),
        [
            pytest.param(
                "dbt_project.yml", ["**"], "a file named dbt_project.yml", id="settings-under-star-star"
            ),
            pytest.param("macros/x.sql", ["**"], "outside models/, tests/", id="macros-under-star-star"),
            pytest.param(".selfheal/rules.yml", ["**"], "a .selfheal folder", id="rules-file"),
            pytest.param("models/.git/config", ALLOWED, "inside a .git folder", id="nested-git-by-default"),
            pytest.param(
                ".git/hooks/pre-commit", [".git/hooks/pre-commit"], "inside a .git folder", id="git-named"
            ),
            pytest.param(STG, [], "is empty, which allows no path", id="empty-allow-list"),
            pytest.param(
                "models/stg_a/x.sql", ["models/stg_[!b]"], "outside the allowed paths", id="class-no-slash"
            ),
        ],
    )
    def test_the_floor_holds_whatever_the_globs(
        self, sandbox: Sandbox, project: Path, path: str, allowed: list[str], fragment: str
    ) -> None:
        before = _tree(sandbox.project_dir)
        with pytest.raises(SandboxError, match=re.escape(fragment)):
            sandbox.write_files({path: "x"}, allowed)
        assert _tree(sandbox.project_dir) == before

    @pytest.mark.parametrize(
        "changes",
        [
            pytest.param({f"{STG}/x.sql": "x"}, id="an-existing-file"),
            pytest.param({"models/new": "x", "models/new/x.sql": "y"}, id="a-file-of-the-same-plan"),
        ],
    )
    def test_a_file_on_the_way_is_refused_before_anything_is_written(
        self, sandbox: Sandbox, changes: dict[str, str]
    ) -> None:
        before = _tree(sandbox.project_dir)
        with pytest.raises(SandboxError, match=r"needs the folder '.*', which is a file"):
            sandbox.write_files(changes, ALLOWED)
        assert _tree(sandbox.project_dir) == before

    def test_an_exact_path_opens_the_floor(self, sandbox: Sandbox) -> None:
        assert sandbox.write_files({"macros/cents.sql": "x"}, ["models/**", "macros/cents.sql"]) == [
            "macros/cents.sql"
        ]

    def test_no_generated_path_lands_past_the_floor(self, sandbox: Sandbox) -> None:
        copy = sandbox.project_dir
        before = _tree(copy)
        landed: set[str] = set()

        @settings(max_examples=300)
        @given(raw_paths(), allow_lists)
        def write(path: str, allowed: list[str]) -> None:
            try:
                sandbox.write_files({path: "select 1\n"}, allowed)
            except SandboxError:
                return
            where = Path(os.path.realpath(copy / path)).relative_to(copy).as_posix()
            assert where == path
            assert escape(where, allowed) is None
            landed.add(where)

        write()
        changed = {path for path, digest in _tree(copy).items() if before.get(path) != digest}
        assert changed == landed  # nothing else on disk moved

    def test_one_string_instead_of_globs_is_refused(self, sandbox: Sandbox) -> None:
        with pytest.raises(SandboxError, match="list of globs"):
            sandbox.write_files({STG: "x"}, "models/**")

    def test_write_changes_only_the_sandbox(self, sandbox: Sandbox, project: Path) -> None:
        live = _tree(project)
        written = sandbox.write_files(
            {STG: "select 2\n", "tests/selfheal_guard_raw_orders.sql": "select 1 where false\n"}, ALLOWED
        )
        assert written == ["models/staging/stg_orders.sql", "tests/selfheal_guard_raw_orders.sql"]
        assert _tree(project) == live
        assert (sandbox.project_dir / STG).read_text() == "select 2\n"
        assert sandbox.changed_files == written

    def test_rewriting_the_live_content_is_no_change(self, sandbox: Sandbox, project: Path) -> None:
        sandbox.write_files({STG: (project / STG).read_text()}, ALLOWED)
        assert sandbox.changed_files == []
        assert sandbox.diff() == ""


class TestEvidence:
    def test_diff_is_exact(self, sandbox: Sandbox) -> None:
        sandbox.write_files(
            {
                STG: "select\n    order_id,\n    email_address as customer_email\nfrom raw",
                "models/new.sql": "select 1\n",
            },
            ALLOWED,
        )
        assert sandbox.diff() == (
            "--- /dev/null\n"
            "+++ b/models/new.sql\n"
            "@@ -0,0 +1 @@\n"
            "+select 1\n"
            "--- a/models/staging/stg_orders.sql\n"
            "+++ b/models/staging/stg_orders.sql\n"
            "@@ -1,4 +1,4 @@\n"
            " select\n"
            "     order_id,\n"
            "-    customer_email\n"
            "-from raw\n"
            "+    email_address as customer_email\n"
            "+from raw\n"
            "\\ No newline at end of file\n"
        )

    def test_files_hash_follows_the_changed_contents(self, sandbox: Sandbox, project: Path) -> None:
        unchanged = sandbox.files_hash()
        assert unchanged == hashlib.sha256(b"").hexdigest()
        sandbox.write_files({STG: "select 2\n"}, ALLOWED)
        first = sandbox.files_hash()
        sandbox.write_files({STG: "select 3\n"}, ALLOWED)
        second = sandbox.files_hash()
        sandbox.write_files({STG: "select 2\n"}, ALLOWED)
        assert len({unchanged, first, second}) == 3
        assert sandbox.files_hash() == first
        sandbox.write_files({STG: (project / STG).read_text()}, ALLOWED)
        assert sandbox.files_hash() == unchanged

    def test_inspected_files_are_recorded_and_survive_reopening(self, sandbox: Sandbox) -> None:
        assert sandbox.read(STG).startswith("select")
        sandbox.read("models/alias.sql")
        with pytest.raises(SandboxError, match="must not contain"):
            sandbox.read("../live/dbt_project.yml")
        sandbox.write_files({STG: "select 2\n"}, ALLOWED)
        reopened = Sandbox.open(sandbox.project_dir)
        assert reopened.inspected == {STG, "models/alias.sql"}
        assert reopened.changed_files == [STG]
        assert reopened.incident_id == "inc-0001"

    def test_open_refuses_a_folder_that_is_not_a_sandbox(self, project: Path) -> None:
        with pytest.raises(SandboxError, match="not a sandbox project copy"):
            Sandbox.open(project)

    def test_publish_uploads_the_evidence_once(self, sandbox: Sandbox, artifact_store: ArtifactStore) -> None:
        store = artifact_store  # a file:// root, then an s3:// one
        sandbox.write_files({STG: "select 2\n"}, ALLOWED)
        sandbox.read(STG)
        sandbox.record_evidence("probes", {"relations": {"RAW.ORDERS": {"row_count": 200}}})
        attempt = sandbox.new_validation_dir()
        (attempt / "result.json").write_text('{"success": true}')
        (attempt / ".request.json").write_text("{}")
        (attempt / "project").mkdir()
        paths = sandbox.publish(store, "incidents/inc-0001/proposal/abc/")
        prefix = "incidents/inc-0001/proposal/abc"
        assert paths == [
            f"{prefix}/diff.patch",
            f"{prefix}/evidence/probes.json",
            f"{prefix}/files/{STG}",
            f"{prefix}/sandbox.json",
            f"{prefix}/validation/attempt-1/result.json",
        ]
        assert store.read_text(f"{prefix}/files/{STG}") == "select 2\n"
        assert store.read_text(f"{prefix}/diff.patch") == sandbox.diff()
        index = store.read_json(f"{prefix}/sandbox.json")
        assert index["files_hash"] == sandbox.files_hash()
        assert index["inspected"] == [STG]
        assert index["changed_files"] == {STG: hashlib.sha256(b"select 2\n").hexdigest()}
        assert (
            store.read_json(f"{prefix}/evidence/probes.json")["relations"]["RAW.ORDERS"]["row_count"] == 200
        )

        assert sandbox.publish(store, prefix) == paths  # a retried task publishes the same bytes again
        sandbox.write_files({STG: "select 3\n"}, ALLOWED)
        with pytest.raises(FileExistsError, match="other content"):
            sandbox.publish(store, prefix)

    def test_validation_attempts_are_numbered(self, sandbox: Sandbox) -> None:
        first, second = sandbox.new_validation_dir(), sandbox.new_validation_dir()
        assert (first.name, second.name) == ("attempt-1", "attempt-2")
        assert sandbox.validation_dirs() == [first, second]

    def test_evidence_name_is_checked(self, sandbox: Sandbox) -> None:
        with pytest.raises(SandboxError, match="evidence name"):
            sandbox.record_evidence("../x", {})
