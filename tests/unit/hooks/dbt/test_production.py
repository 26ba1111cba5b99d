"""DbtProductionHook without a warehouse: its refusals, the request it writes, and the result it assembles."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_selfheal.hooks.dbt import (
    PROD_PROFILE_NAME,
    PROD_TARGET_NAME,
    PROFILE_NAME,
    TARGET_NAME,
    ChildOutcome,
    DbtProductionHook,
    DbtRunError,
    ProductionBuildResult,
    ProductionRefused,
)
from airflow_selfheal.hooks.dbt import production as production_module

if TYPE_CHECKING:
    from pathlib import Path

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
PASSWORD = "s3cret-pw"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    return folder


class FakeChild:
    """Stands in for the dbt child: records the request and the profile, writes what dbt would have written."""

    def __init__(
        self,
        *,
        returncode: int | None = 0,
        timed_out: bool = False,
        output: str = "",
        results: list[dict[str, Any]] | None = None,
        report: dict[str, Any] | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.outcome = ChildOutcome(returncode, timed_out, output, 1.23)
        self.results, self.report, self.manifest = results, report, manifest
        self.requests: list[dict[str, Any]] = []
        self.profiles: list[str] = []
        self.passwords: list[str] = []

    def __call__(
        self, request_path: Path, *, cwd: Path, password: str, timeout: float | None
    ) -> ChildOutcome:
        request = json.loads(request_path.read_text())
        self.requests.append({**request, "timeout": timeout})
        self.profiles.append((cwd / "profiles" / "profiles.yml").read_text())
        self.passwords.append(password)
        target = cwd / "target"
        target.mkdir(exist_ok=True)
        if self.results is not None:
            (target / "run_results.json").write_text(json.dumps({"results": self.results}))
        if self.manifest is not None:
            (target / "manifest.json").write_text(json.dumps(self.manifest))
        if self.report is not None:
            (cwd / "report.json").write_text(json.dumps(self.report))
        return self.outcome


def use(monkeypatch: pytest.MonkeyPatch, child: FakeChild) -> FakeChild:
    monkeypatch.setattr(production_module, "run_dbt_child", child)
    return child


class TestRefusals:
    def test_a_clone_as_production_is_refused_before_dbt(
        self, connection: str, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child = use(monkeypatch, FakeChild())
        with pytest.raises(ProductionRefused, match="it is a selfheal clone"):
            DbtProductionHook().build(project, select="a+", snowflake_conn_id=connection, prod_database=CLONE)
        with pytest.raises(ProductionRefused, match="it is a selfheal clone"):
            DbtProductionHook().parse(
                project, snowflake_conn_id=connection, prod_database=CLONE, work_dir=project.parent / "w"
            )
        assert child.requests == []

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            pytest.param({"select": " "}, "select must name the nodes", id="empty-select"),
            pytest.param({"project_dir": "/nonexistent"}, "is not a dbt project", id="not-a-project"),
        ],
    )
    def test_bad_arguments(
        self,
        connection: str,
        project: Path,
        monkeypatch: pytest.MonkeyPatch,
        arguments: dict[str, str],
        message: str,
    ) -> None:
        child = use(monkeypatch, FakeChild())
        values: dict[str, Any] = {
            "project_dir": project,
            "select": "a+",
            "snowflake_conn_id": connection,
            "prod_database": "DEMO",
            **arguments,
        }
        with pytest.raises(ValueError, match=message):
            DbtProductionHook().build(values.pop("project_dir"), **values)
        assert child.requests == []

    @pytest.mark.parametrize(
        "arguments", [pytest.param({"timeout": 0}, id="timeout"), pytest.param({"threads": 0}, id="threads")]
    )
    def test_bad_settings(self, arguments: dict[str, float]) -> None:
        with pytest.raises(ValueError, match="must be"):
            DbtProductionHook(**arguments)


class TestBuild:
    def test_success_with_the_production_profile_and_a_manifest_copy(
        self, connection: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child = use(
            monkeypatch,
            FakeChild(
                results=[
                    {"unique_id": "model.shop.a", "status": "success", "message": "OK"},
                    {"unique_id": "test.shop.t", "status": "pass", "message": None},
                ],
                report={"phase": "built", "success": True},
                manifest={"nodes": {"model.shop.a": {}}},
                output="Done. PASS=2",
            ),
        )

        result = DbtProductionHook(timeout=50, threads=2).build(
            project,
            select="a+ b+",
            snowflake_conn_id=connection,
            prod_database="demo",
            manifest_dir=tmp_path / "mine",
        )

        assert result == ProductionBuildResult(
            success=True,
            select="a+ b+",
            returncode=0,
            elapsed_seconds=1.2,
            nodes=(
                {"unique_id": "model.shop.a", "status": "success"},
                {"unique_id": "test.shop.t", "status": "pass"},
            ),
            logs_excerpt="Done. PASS=2",
            manifest_path=tmp_path / "mine" / "manifest.json",
            timed_out=False,
            error=None,
        )
        assert json.loads((tmp_path / "mine" / "manifest.json").read_text()) == {
            "nodes": {"model.shop.a": {}}
        }
        (request,) = child.requests
        assert request["kind"] == "production"
        assert (request["command"], request["select"], request["threads"], request["timeout"]) == (
            "build",
            "a+ b+",
            2,
            50,
        )
        assert request["project_dir"] == str(project)
        assert not request["target_path"].startswith(str(project))
        profile = yaml.safe_load(child.profiles[0])
        assert list(profile) == [PROD_PROFILE_NAME]
        assert profile[PROD_PROFILE_NAME]["target"] == PROD_TARGET_NAME
        assert profile[PROD_PROFILE_NAME]["outputs"][PROD_TARGET_NAME]["database"] == "DEMO"
        assert PROFILE_NAME not in child.profiles[0]
        assert TARGET_NAME not in child.profiles[0]
        assert PASSWORD not in child.profiles[0]
        assert child.passwords == [PASSWORD]
        assert result.to_dict()["manifest_path"] == str(tmp_path / "mine" / "manifest.json")
        assert json.loads(json.dumps(result.to_dict()))["nodes"][0] == {
            "unique_id": "model.shop.a",
            "status": "success",
        }
        assert not (project / "target").exists()

    def test_failed_nodes_are_named_and_the_excerpt_starts_at_the_summary(
        self, connection: str, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        output = "PASS x\n" * 2000 + "Completed with 1 error:\n  Database Error in model a\n"
        use(
            monkeypatch,
            FakeChild(
                returncode=1,
                output=output,
                results=[
                    {"unique_id": "model.shop.a", "status": "error", "message": "boom"},
                    {"unique_id": "model.shop.b", "status": "skipped", "message": None},
                ],
                report={"phase": "built", "success": False},
            ),
        )

        result = DbtProductionHook().build(
            project, select="a+", snowflake_conn_id=connection, prod_database="DEMO"
        )

        assert (result.success, result.returncode, result.timed_out) == (False, 1, False)
        assert result.error == "dbt build failed: model.shop.a"
        assert result.logs_excerpt.startswith("Completed with 1 error:")
        assert result.manifest_path is None
        assert [node["status"] for node in result.nodes] == ["error", "skipped"]

    def test_a_timeout_is_a_failed_result(
        self, connection: str, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use(monkeypatch, FakeChild(returncode=None, timed_out=True, output="Running with dbt\n"))

        result = DbtProductionHook(timeout=7).build(
            project, select="a+", snowflake_conn_id=connection, prod_database="DEMO"
        )

        assert (result.success, result.returncode, result.timed_out, result.nodes) == (False, None, True, ())
        assert result.error == "dbt build did not finish within 7s; it was stopped"

    def test_a_child_that_died_before_reporting(
        self, connection: str, project: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use(monkeypatch, FakeChild(returncode=1, output="Traceback ...\nImportError: dbt"))

        result = DbtProductionHook().build(
            project, select="a+", snowflake_conn_id=connection, prod_database="DEMO"
        )

        assert result.error == "the dbt process exited with code 1 before reporting"
        assert result.logs_excerpt.endswith("ImportError: dbt")


class TestParse:
    def test_returns_the_manifest_written_into_the_callers_folder(
        self, connection: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        child = use(
            monkeypatch,
            FakeChild(
                manifest={"metadata": {"project_name": "shop"}}, report={"phase": "parsed", "success": True}
            ),
        )

        manifest = DbtProductionHook().parse(
            project, snowflake_conn_id=connection, prod_database="DEMO", work_dir=tmp_path / "work"
        )

        assert manifest == {"metadata": {"project_name": "shop"}}
        assert (tmp_path / "work" / "target" / "manifest.json").is_file()
        (request,) = child.requests
        assert (request["kind"], request["command"]) == ("production", "parse")
        assert request["target_path"] == str(tmp_path / "work" / "target")

    def test_a_failed_parse_raises_with_dbt_output(
        self, connection: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use(
            monkeypatch,
            FakeChild(
                returncode=2,
                output="Compilation Error in model a",
                report={"phase": "parsed", "success": False, "reason": "dbt parse raised: Compilation Error"},
            ),
        )

        with pytest.raises(
            DbtRunError, match=r"did not produce a manifest: dbt parse raised: Compilation Error"
        ):
            DbtProductionHook().parse(
                project, snowflake_conn_id=connection, prod_database="DEMO", work_dir=tmp_path / "work"
            )
