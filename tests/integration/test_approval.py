"""Approval in the Airflow UI, for real: ``dag.test()`` parks the ApprovalOperator in AWAITING_INPUT and an
api-server sharing the metadata DB receives the same PATCH the UI sends."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dev.apiserver import answer_when_asked, running_api_server

if TYPE_CHECKING:
    from tests.support.bundles import DagBundles

pytestmark = pytest.mark.integration

BUNDLE = "selfheal-approval-probe"
DAG_ID = "selfheal_probe_approval"
PROBE = textwrap.dedent(
    """
    from __future__ import annotations

    from datetime import datetime
    from pathlib import Path

    from airflow.providers.standard.operators.hitl import ApprovalOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    MARKER = Path(__file__).with_name("promoted.txt")

    with DAG("selfheal_probe_approval", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
        approve = ApprovalOperator(task_id="approve", subject="Promote the fix?", body="diff goes here")
        promote = PythonOperator(task_id="promote", python_callable=lambda: MARKER.write_text("promoted"))
        approve >> promote
    """
)


@pytest.fixture(scope="module")
def probe(
    module_dag_bundles: DagBundles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("approval_dags")
    (folder / "probe_approval.py").write_text(PROBE)
    module_dag_bundles.sync(BUNDLE, folder, with_dags_folder=True)
    with running_api_server(folder / "api-server.log") as base_url:
        yield folder, base_url


@pytest.mark.parametrize(
    ("option", "promote_state", "promoted"),
    [
        pytest.param("Approve", "success", True, id="approve"),
        pytest.param("Reject", "skipped", False, id="reject"),
    ],
)
def test_answer_through_api_server(
    probe: tuple[Path, str], option: str, promote_state: str, promoted: bool
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder, base_url = probe
    (folder / "promoted.txt").unlink(missing_ok=True)
    dag = DagBag(dag_folder=str(folder)).dags[DAG_ID]
    thread, outcome = answer_when_asked(base_url, DAG_ID, "approve", option, timeout=300)
    run = dag.test()
    thread.join(timeout=30)
    assert "error" not in outcome, outcome
    assert outcome["run_id"] == run.run_id
    assert outcome["asked"]["subject"] == "Promote the fix?"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"approve": "success", "promote": promote_state}
    assert (folder / "promoted.txt").exists() is promoted
