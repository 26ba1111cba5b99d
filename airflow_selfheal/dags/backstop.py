"""``build_backstop_dag``: the backstop as a scheduled Airflow DAG.

A dbt task killed before its ``on_failure_callback`` ran (SIGKILL, out of memory) opens no incident;
:class:`~airflow_selfheal.operators.backstop.IncidentBackstopOperator` finds such failures through the
api-server's REST API and reports them. This DAG runs it every few minutes.

.. code-block:: python

    from airflow_selfheal.dags.backstop import build_backstop_dag

    backstop_dag = build_backstop_dag(airflow_conn_id="airflow_api", dag_ids=["shop_pipeline"])
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.operators.backstop import IncidentBackstopOperator

if TYPE_CHECKING:
    from airflow.sdk import DAG

DEFAULT_DAG_ID = "selfheal_backstop"


def build_backstop_dag(
    dag_id: str = DEFAULT_DAG_ID, schedule: str = "*/10 * * * *", **operator_kwargs: Any
) -> DAG:
    """
    A DAG that runs :class:`~airflow_selfheal.operators.backstop.IncidentBackstopOperator` on a schedule.

    .. code-block:: python

        backstop_dag = build_backstop_dag(airflow_conn_id="airflow_api", lookback=timedelta(hours=2))

    :param dag_id: the DAG id.
    :param schedule: a cron expression; every 10 minutes by default.
    :param operator_kwargs: :class:`~airflow_selfheal.operators.backstop.IncidentBackstopOperator` arguments
        (``airflow_conn_id`` is required).
    :return: the DAG.
    """
    from airflow.sdk import DAG

    with DAG(
        dag_id,
        schedule=schedule,
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["selfheal"],
        doc_md="Reports failed dbt tasks that never ran their failure callback (killed, out of memory).",
    ) as dag:
        IncidentBackstopOperator(task_id="report_orphan_failures", **operator_kwargs)
    return dag
