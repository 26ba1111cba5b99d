"""
The repair DAG's steps: each task body, reading typed inputs from earlier tasks and returning a typed result.

One module per task (or per group of tasks that touch the same thing): :mod:`~.triage`, :mod:`~.clone`,
:mod:`~.propose`, :mod:`~.validate`, :mod:`~.notify` (pages and escalations), :mod:`~.promote`,
:mod:`~.production` (retry, re-run, baseline), :mod:`~.cleanup`. Each step takes the :class:`RepairConfig` and a
:class:`~airflow_selfheal.repair.run.RunContext`; the pure decisions they apply live in
:mod:`airflow_selfheal.core.repair`, the I/O they do in :mod:`airflow_selfheal.hooks`.

Importing this package imports only :class:`RepairConfig`, so a DAG file that builds the repair DAG stays cheap
to parse.

.. code-block:: python

    from airflow_selfheal.dags.repair import build_repair_dag
    from airflow_selfheal.repair import RepairConfig

    dag = build_repair_dag(config=RepairConfig(project_dir="/opt/dbt/shop", snowflake_conn_id="snowflake", prod_database="PROD"))
"""

from __future__ import annotations

from airflow_selfheal.repair.config import RepairConfig

__all__ = ["RepairConfig"]
