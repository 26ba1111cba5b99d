"""
Zero-copy clones for the repair loop: clone prod for an incident, verify the clone, drop it, sweep orphans.

* :mod:`~airflow_selfheal.hooks.snowflake_clone.hook` — :class:`SnowflakeCloneHook`, the clone's lifecycle;
* :mod:`~airflow_selfheal.hooks.snowflake_clone.results` — :class:`CloneResult`;
* :mod:`~airflow_selfheal.hooks.snowflake_clone.run` — one clone attempt from start to end;
* :mod:`~airflow_selfheal.hooks.snowflake_clone.views` — views re-created to read the clone;
* :mod:`~airflow_selfheal.hooks.snowflake_clone.verification` — the clone compared with its source;
* :mod:`~airflow_selfheal.hooks.snowflake_clone.state` — the state an attempt's steps share.
"""

from __future__ import annotations

from airflow_selfheal.hooks.snowflake_clone.hook import SnowflakeCloneHook
from airflow_selfheal.hooks.snowflake_clone.results import DROP_OUTCOMES, STRATEGIES, CloneResult
from airflow_selfheal.hooks.snowflake_clone.state import ObjectKey
from airflow_selfheal.hooks.snowflake_clone.verification import COUNT_CHUNK

__all__ = ["COUNT_CHUNK", "DROP_OUTCOMES", "STRATEGIES", "CloneResult", "ObjectKey", "SnowflakeCloneHook"]
