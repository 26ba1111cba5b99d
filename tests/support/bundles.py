"""Temp DAG bundles for integration tests: ``dag.test()`` runs only DAGs that are serialized in the metadata DB.

A test writes its DAG files into a temp folder and asks the ``dag_bundles`` fixture (one test) or the
``module_dag_bundles`` fixture (one module) of ``tests/integration/conftest.py`` to configure and sync it:

.. code-block:: python

    def test_pipeline(dag_bundles: DagBundles, tmp_path: Path) -> None:
        (tmp_path / "pipeline.py").write_text(DAG_FILE)
        bag = dag_bundles.sync("my-bundle", tmp_path)
        bag.dags["my_pipeline"].test()

The setting (``[dag_processor] dag_bundle_config_list``) is put back when the test or the module ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dev.e2e import bundle_config, sync_bundle

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

BUNDLE_CONFIG_LIST = "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"


class DagBundles:
    """
    Names a temp DAG folder as the configured bundle and syncs it into the metadata DB.

    :param patch: where the setting is made; undoing it removes the bundle from the configuration.
    """

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self.patch = patch

    def configure(self, name: str, folder: Path, *, with_dags_folder: bool = False) -> Path:
        """
        Make ``folder`` the bundle ``name``; ``dag.test()`` and the next sync read it.

        :param with_dags_folder: keep the default ``dags-folder`` bundle configured after it, so a sync does not
            deactivate it for the tests that run later in this process.
        :return: ``folder``.
        """
        self.patch.setenv(BUNDLE_CONFIG_LIST, bundle_config(name, folder, with_dags_folder=with_dags_folder))
        return folder

    def sync(self, name: str, folder: Path, *, with_dags_folder: bool = False) -> Any:
        """
        :meth:`configure`, then parse ``folder`` and write its DAGs to the metadata DB.

        :return: the ``BundleDagBag``; its ``dags`` run with ``dag.test()``.
        :raises RuntimeError: when a DAG file does not import, with Airflow's own errors.
        """
        self.configure(name, folder, with_dags_folder=with_dags_folder)
        return sync_bundle(name, folder)
