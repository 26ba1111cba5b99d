"""Fixtures the integration modules share.

``dag_bundles`` and ``module_dag_bundles`` (:class:`tests.support.bundles.DagBundles`) put a temp DAG folder into
``[dag_processor] dag_bundle_config_list`` and sync it into the metadata DB, for one test or for one module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.bundles import DagBundles

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def dag_bundles(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> DagBundles:
    """Temp DAG bundles for one test: configured until the test ends."""
    return DagBundles(monkeypatch)


@pytest.fixture(scope="module")
def module_dag_bundles(airflow_db: Path) -> Iterator[DagBundles]:
    """Temp DAG bundles for a module's fixtures: configured until the module's last test ends."""
    patch = pytest.MonkeyPatch()
    try:
        yield DagBundles(patch)
    finally:
        patch.undo()
