"""Test harness: an isolated Airflow home and an embedded warehouse, configured before Airflow is imported.

Airflow reads its configuration when first imported, and collecting a test module may import it, so the
environment is set here at import time. The warehouse itself starts lazily, only for tests that ask for it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from dev import airflow_env
from dev.warehouse import Warehouse, free_port, start, stop

if TYPE_CHECKING:
    from collections.abc import Iterator

# Property-based tests: the same examples on every run (a red CI must be reproducible), no example database
# in the checkout, and no deadline on these shared, noisy machines. HYPOTHESIS_PROFILE=explore searches anew.
settings.register_profile("repeatable", derandomize=True, database=None, deadline=None, max_examples=200)
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

SESSION_DIR = Path(tempfile.mkdtemp(prefix="selfheal-tests-"))
WAREHOUSE = Warehouse("127.0.0.1", free_port(), SESSION_DIR / "warehouse")
airflow_env.apply(airflow_env.airflow_environ(SESSION_DIR / "airflow", WAREHOUSE))


# The longest modules, started first: `make test` runs `--dist loadfile --no-loadscope-reorder`, so pytest-xdist
# hands out modules in this order and the short ones fill in around the long ones at the end.
LONGEST_FIRST = (
    "tests/integration/test_rides_e2e_columns.py",
    "tests/integration/test_rides_e2e_tables_and_data.py",
    "tests/integration/test_stack.py",
    "tests/integration/test_readme_dags.py",
    "tests/integration/test_repair_e2e.py",
    "tests/integration/test_worker_hopping.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop(WAREHOUSE.data_dir)
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def warehouse() -> Iterator[Warehouse]:
    """The session's embedded warehouse, started on first use and stopped at the end of the session."""
    return start(WAREHOUSE.host, WAREHOUSE.port, WAREHOUSE.data_dir)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata DB under the session's AIRFLOW_HOME."""
    airflow_env.migrate_db()
    return SESSION_DIR / "airflow" / "airflow.db"


@pytest.fixture(scope="session")
def demo_manifest() -> Path:
    """``manifest.json`` of the demo dbt project, built by a real ``dbt parse``."""
    return airflow_env.dbt_parse()
