"""The dev dbt projects, one registry: the demo shop (``shop``) and the bike share (``rides``).

Two projects of different shape (layout, SQL style, sources, tests, incremental config) keep fixes and tests
from fitting one of them. Everything a test, the demo or a benchmark needs to run a project on the embedded
warehouse is here: where its dbt project and raw data live, how to load it, its drift scenarios and its oracles.

.. code-block:: python

    from dev.projects import PROJECTS

    for project in PROJECTS.values():
        with warehouse.connect(database=project.database) as conn:
            project.load(conn)
        for scenario in project.scenarios.values():
            ...

``python -m dev.loader --project rides`` and ``python -m dev.scenarios list --project rides`` use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev import loader, oracles, scenarios

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from dev.loader import RawLayout, Rows
    from dev.oracles import Oracle, OracleMismatch
    from dev.scenarios import Scenario
    from dev.warehouse import Warehouse

DEV_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DevProject:
    """One dev dbt project and its raw data on the embedded warehouse.

    :param key: registry key and CLI value (``shop``, ``rides``).
    :param project_dir: the dbt project (``dbt_project.yml``, ``profiles.yml``).
    :param dbt_project_name: ``name`` in ``dbt_project.yml``; the middle part of its unique ids.
    :param profile_name: ``profile`` in ``dbt_project.yml``.
    :param raw: database, raw schema and the DDL of the raw tables.
    :param target_schema: the profile's schema, where the models are built.
    :param baseline_name: the drift baseline of the project's sources.
    :param generate_rows: ``(seed=..., loaded_at=...) -> rows per raw table``, deterministic for a seed.
    :param default_seed: the seed the demo and the tests load.
    :param scenarios: the project's drift and fault scenarios by name.
    :param oracles: facts about the marts with expected values computed from the rows.
    :param git_dir_name: the folder ``dev.project_repo.git_copy`` copies the project to.
    """

    key: str
    project_dir: Path
    dbt_project_name: str
    profile_name: str
    raw: RawLayout
    target_schema: str
    baseline_name: str
    generate_rows: Callable[..., Rows]
    default_seed: int
    scenarios: Mapping[str, Scenario]
    oracles: tuple[Oracle, ...]
    git_dir_name: str

    @property
    def database(self) -> str:
        """The database holding the raw schema and the models."""
        return self.raw.database

    @property
    def raw_schema(self) -> str:
        """The schema the raw tables are loaded into."""
        return self.raw.schema

    @property
    def raw_tables(self) -> Mapping[str, Mapping[str, str]]:
        """Raw table -> column -> Snowflake type."""
        return self.raw.tables

    @property
    def marts(self) -> str:
        """``DATABASE.SCHEMA`` of the built models (the oracles' ``{marts}``)."""
        return f"{self.database}.{self.target_schema}"

    def rows(self, seed: int | None = None, loaded_at: datetime | None = None) -> Rows:
        """The generated raw rows for ``seed`` (default: the project's)."""
        return self.generate_rows(seed=self.default_seed if seed is None else seed, loaded_at=loaded_at)

    def load(
        self, conn: Any, *, seed: int | None = None, loaded_at: datetime | None = None
    ) -> dict[str, int]:
        """(Re)create the raw schema and load the rows; return the row count per table, as counted after the load."""
        return self.raw.load(conn, self.rows(seed, loaded_at))

    def connect(self, warehouse: Warehouse) -> Any:
        """A connector session on the project's database."""
        return warehouse.connect(database=self.database)

    def check_oracles(self, conn: Any, seed: int | None = None) -> list[OracleMismatch]:
        """The oracles that disagree with the rows of ``seed``; empty when the marts are right."""
        return oracles.check_oracles(conn, self.oracles, self.rows(seed), marts=self.marts)


SHOP = DevProject(
    key="shop",
    project_dir=DEV_DIR / "demo_project",
    dbt_project_name="selfheal_demo",
    profile_name="selfheal_demo",
    raw=loader.SHOP_RAW,
    target_schema="ANALYTICS",
    baseline_name="shop_raw",
    generate_rows=loader.generate_rows,
    default_seed=7,
    scenarios=scenarios.SCENARIOS,
    oracles=oracles.SHOP_ORACLES,
    git_dir_name="shop_dbt",
)

RIDES = DevProject(
    key="rides",
    project_dir=DEV_DIR / "rides_project",
    dbt_project_name="rides",
    profile_name="rides",
    raw=loader.RIDES_RAW,
    target_schema="CORE",
    baseline_name="rides_landing",
    generate_rows=loader.generate_rides_rows,
    default_seed=11,
    scenarios=scenarios.RIDES_SCENARIOS,
    oracles=oracles.RIDES_ORACLES,
    git_dir_name="rides_dbt",
)

PROJECTS: dict[str, DevProject] = {project.key: project for project in (SHOP, RIDES)}


def get_project(key: str) -> DevProject:
    """The dev project named ``key``; an unknown key is an error that names the known ones."""
    if key not in PROJECTS:
        raise KeyError(f"no dev project {key!r}; known projects: {', '.join(PROJECTS)}")
    return PROJECTS[key]


def project_for_dir(project_dir: Path) -> DevProject | None:
    """The dev project whose dbt project is ``project_dir``, or None for any other directory."""
    resolved = Path(project_dir).resolve()
    return next((project for project in PROJECTS.values() if project.project_dir == resolved), None)
