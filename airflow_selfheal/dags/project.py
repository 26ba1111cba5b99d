"""Which dbt project a shipped DAG file serves, read from the environment and the project's own files.

The example pipeline (``dags/dbt_pipeline.py``) and the ready-made repair DAG (``dags/selfheal_repair.py``) serve
any dbt project: nothing in them names a project, a profile, a database or a baseline. The dbt project's name and
profile come from its ``dbt_project.yml``; everything else comes from ``SELFHEAL_*`` environment variables, with
defaults derived from the project's name.

.. code-block:: python

    settings = DbtProjectSettings.from_environment()
    settings.pipeline_dag_id  # "rides_pipeline" for a project named rides, unless SELFHEAL_PIPELINE_DAG_ID says so

Parsing a DAG file reads one small YAML file; no dbt, no connection, no metadata DB.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Environment variables read by :meth:`DbtProjectSettings.from_environment`, with what each one sets.
ENVIRONMENT: Mapping[str, str] = {
    "SELFHEAL_DBT_PROJECT_DIR": "the dbt project (a git working tree on the deploy branch); required",
    "SELFHEAL_DBT_MANIFEST": "its manifest.json (default <project>/target/manifest.json)",
    "SELFHEAL_DBT_TARGET": "the dbt target name cosmos renders the profile for (default prod)",
    "SELFHEAL_WAREHOUSE_CONN_ID": "the Airflow Snowflake connection (default snowflake_default)",
    "SELFHEAL_PROD_DATABASE": "the production database the repair loop clones (default: none; required by the repair DAG)",
    "SELFHEAL_PIPELINE_DAG_ID": "the pipeline DAG's id (default <project name>_pipeline)",
    "SELFHEAL_DBT_GROUP_ID": "the cosmos task group's id (default: the project name)",
    "SELFHEAL_BASELINE_NAME": "the drift baseline of the project's sources (default <project name>_sources)",
    "SELFHEAL_DBT_SOURCE_RENDERING": "cosmos's source rendering: none, all or with_tests_or_freshness (the default)",
}

#: cosmos ``SourceRenderingBehavior`` values (cosmos is not imported here: this runs on every DAG parse).
SOURCE_RENDERINGS = ("none", "all", "with_tests_or_freshness")

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,249}$")


class ProjectSettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and the fix."""


@dataclass(frozen=True)
class DbtProjectSettings:
    """
    One dbt project as the shipped DAG files see it.

    :param project_dir: the dbt project folder.
    :param manifest_path: its ``manifest.json`` (cosmos renders from it; the callback reads lineage from it).
    :param project_name: ``name`` in ``dbt_project.yml``.
    :param profile_name: ``profile`` in ``dbt_project.yml``.
    :param target_name: the dbt target cosmos renders.
    :param warehouse_conn_id: the Airflow Snowflake connection.
    :param prod_database: the production database, or None where no repair DAG is built.
    :param pipeline_dag_id: the pipeline DAG's id.
    :param group_id: the cosmos task group's id.
    :param baseline_name: the drift baseline of the project's sources.
    :param source_rendering: cosmos's ``SourceRenderingBehavior`` value for the project's sources.
    """

    project_dir: Path
    manifest_path: Path
    project_name: str
    profile_name: str
    target_name: str
    warehouse_conn_id: str
    prod_database: str | None
    pipeline_dag_id: str
    group_id: str
    baseline_name: str
    source_rendering: str = "with_tests_or_freshness"

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        default_project_dir: str | os.PathLike[str] | None = None,
    ) -> DbtProjectSettings:
        """
        Read the settings from ``environ`` (default ``os.environ``) and the project's ``dbt_project.yml``.

        :param environ: the environment to read.
        :param default_project_dir: used when ``SELFHEAL_DBT_PROJECT_DIR`` is unset.
        :raises ProjectSettingsError: when the project cannot be found or read, or a value is malformed.
        """
        env = os.environ if environ is None else environ
        raw_dir = env.get("SELFHEAL_DBT_PROJECT_DIR") or (
            None if default_project_dir is None else os.fspath(default_project_dir)
        )
        if not raw_dir:
            raise ProjectSettingsError(
                "SELFHEAL_DBT_PROJECT_DIR is not set. Fix: point it at your dbt project (the folder holding "
                "dbt_project.yml)."
            )
        project_dir = Path(raw_dir).expanduser()
        name, profile = read_dbt_project(project_dir)
        manifest = Path(env.get("SELFHEAL_DBT_MANIFEST") or project_dir / "target" / "manifest.json")
        # field -> (variable, default); each value must be a plain name.
        named = {
            "target_name": ("SELFHEAL_DBT_TARGET", "prod"),
            "warehouse_conn_id": ("SELFHEAL_WAREHOUSE_CONN_ID", "snowflake_default"),
            "pipeline_dag_id": ("SELFHEAL_PIPELINE_DAG_ID", f"{name}_pipeline"),
            "group_id": ("SELFHEAL_DBT_GROUP_ID", name),
            "baseline_name": ("SELFHEAL_BASELINE_NAME", f"{name}_sources"),
        }
        values = {field: env.get(variable) or default for field, (variable, default) in named.items()}
        for field, value in values.items():
            if not _IDENTIFIER.match(value):
                raise ProjectSettingsError(
                    f"{named[field][0]}={value!r} is not a valid name. Fix: use letters, digits, '_', '.' or '-', "
                    "starting with a letter or '_'."
                )
        source_rendering = env.get("SELFHEAL_DBT_SOURCE_RENDERING") or "with_tests_or_freshness"
        if source_rendering not in SOURCE_RENDERINGS:
            raise ProjectSettingsError(
                f"SELFHEAL_DBT_SOURCE_RENDERING={source_rendering!r} is not a cosmos source rendering. Fix: use "
                f"one of {', '.join(SOURCE_RENDERINGS)}."
            )
        prod_database = env.get("SELFHEAL_PROD_DATABASE") or None
        return cls(
            project_dir=project_dir,
            manifest_path=manifest,
            project_name=name,
            profile_name=profile,
            prod_database=prod_database,
            source_rendering=source_rendering,
            **values,
        )

    def require_manifest(self) -> Path:
        """
        The manifest path, after checking that the file exists.

        :raises ProjectSettingsError: naming the missing file and how to build it.
        """
        if not self.manifest_path.is_file():
            raise ProjectSettingsError(
                f"dbt manifest not found at {self.manifest_path}. Fix: run `dbt parse` in {self.project_dir}, or "
                "point SELFHEAL_DBT_MANIFEST at your CI-built manifest."
            )
        return self.manifest_path

    def require_prod_database(self) -> str:
        """
        The production database.

        :raises ProjectSettingsError: when ``SELFHEAL_PROD_DATABASE`` is unset.
        """
        if not self.prod_database:
            raise ProjectSettingsError(
                "SELFHEAL_PROD_DATABASE is not set. Fix: name the production database the repair DAG may clone "
                "(it is never written before approval)."
            )
        return self.prod_database


def read_dbt_project(project_dir: Path) -> tuple[str, str]:
    """
    ``(name, profile)`` from ``project_dir/dbt_project.yml``.

    :raises ProjectSettingsError: when the file is missing, is not YAML, or lacks ``name``.
    """
    import yaml

    path = project_dir / "dbt_project.yml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProjectSettingsError(
            f"{path} does not exist. Fix: set SELFHEAL_DBT_PROJECT_DIR to the folder holding dbt_project.yml."
        ) from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectSettingsError(f"{path} cannot be read as YAML ({exc}). Fix: repair the file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise ProjectSettingsError(f"{path} has no project `name`. Fix: add `name: <project>` to it.")
    name = data["name"]
    profile = data.get("profile")
    return name, profile if isinstance(profile, str) and profile else name
