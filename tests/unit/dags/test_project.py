from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_selfheal.dags.project import DbtProjectSettings, ProjectSettingsError

if TYPE_CHECKING:
    from pathlib import Path


def project(tmp_path: Path, text: str = "name: rides\nprofile: rides_profile\n") -> Path:
    (tmp_path / "dbt_project.yml").write_text(text)
    return tmp_path


class TestFromEnvironment:
    def test_names_derive_from_the_project(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path))})
        assert settings.project_name == "rides"
        assert settings.profile_name == "rides_profile"
        assert settings.pipeline_dag_id == "rides_pipeline"
        assert settings.group_id == "rides"
        assert settings.baseline_name == "rides_sources"
        assert settings.target_name == "prod"
        assert settings.warehouse_conn_id == "snowflake_default"
        assert settings.manifest_path == tmp_path / "target" / "manifest.json"
        assert settings.prod_database is None

    def test_profile_defaults_to_the_project_name(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment(
            {"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path, "name: fleet\n"))}
        )
        assert settings.profile_name == "fleet"

    def test_environment_overrides_every_default(self, tmp_path: Path) -> None:
        env = {
            "SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path)),
            "SELFHEAL_DBT_MANIFEST": str(tmp_path / "ci" / "manifest.json"),
            "SELFHEAL_DBT_TARGET": "production",
            "SELFHEAL_WAREHOUSE_CONN_ID": "snowflake_prod",
            "SELFHEAL_PROD_DATABASE": "ANALYTICS_PROD",
            "SELFHEAL_PIPELINE_DAG_ID": "nightly",
            "SELFHEAL_DBT_GROUP_ID": "dbt",
            "SELFHEAL_BASELINE_NAME": "landing",
        }
        settings = DbtProjectSettings.from_environment(env)
        assert (settings.target_name, settings.warehouse_conn_id) == ("production", "snowflake_prod")
        assert (settings.pipeline_dag_id, settings.group_id, settings.baseline_name) == (
            "nightly",
            "dbt",
            "landing",
        )
        assert settings.require_prod_database() == "ANALYTICS_PROD"
        assert settings.manifest_path == tmp_path / "ci" / "manifest.json"

    def test_default_project_dir_is_used_when_unset(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment({}, default_project_dir=project(tmp_path))
        assert settings.project_dir == tmp_path


class TestErrors:
    def test_unset_project_dir_names_the_variable(self) -> None:
        with pytest.raises(ProjectSettingsError, match="SELFHEAL_DBT_PROJECT_DIR is not set"):
            DbtProjectSettings.from_environment({})

    def test_missing_dbt_project_yml_names_the_file(self, tmp_path: Path) -> None:
        with pytest.raises(ProjectSettingsError, match=r"dbt_project\.yml does not exist"):
            DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(tmp_path)})

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("name: [unclosed\n", id="not-yaml"),
            pytest.param("- a list\n", id="not-a-mapping"),
            pytest.param("profile: p\n", id="no-name"),
        ],
    )
    def test_malformed_dbt_project_yml_is_refused(self, tmp_path: Path, text: str) -> None:
        with pytest.raises(ProjectSettingsError, match="Fix:"):
            DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path, text))})

    def test_malformed_name_names_its_variable(self, tmp_path: Path) -> None:
        env = {"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path)), "SELFHEAL_PIPELINE_DAG_ID": "no spaces"}
        with pytest.raises(ProjectSettingsError, match="SELFHEAL_PIPELINE_DAG_ID='no spaces'"):
            DbtProjectSettings.from_environment(env)

    def test_missing_manifest_says_how_to_build_it(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path))})
        with pytest.raises(ProjectSettingsError, match="run `dbt parse`"):
            settings.require_manifest()

    def test_repair_dag_needs_the_prod_database(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path))})
        with pytest.raises(ProjectSettingsError, match="SELFHEAL_PROD_DATABASE is not set"):
            settings.require_prod_database()


class TestSourceRendering:
    def test_defaults_to_freshness_and_tests(self, tmp_path: Path) -> None:
        settings = DbtProjectSettings.from_environment({"SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path))})
        assert settings.source_rendering == "with_tests_or_freshness"

    def test_a_value_cosmos_does_not_know_is_refused_with_the_choices(self, tmp_path: Path) -> None:
        env = {
            "SELFHEAL_DBT_PROJECT_DIR": str(project(tmp_path)),
            "SELFHEAL_DBT_SOURCE_RENDERING": "freshness",
        }
        with pytest.raises(ProjectSettingsError, match="one of none, all, with_tests_or_freshness"):
            DbtProjectSettings.from_environment(env)

    def test_matches_cosmos(self) -> None:
        import cosmos.airflow.graph  # noqa: F401 - cosmos.constants is only importable after the package
        from cosmos.constants import SourceRenderingBehavior

        from airflow_selfheal.dags.project import SOURCE_RENDERINGS

        assert set(SOURCE_RENDERINGS) == {behavior.value for behavior in SourceRenderingBehavior}
