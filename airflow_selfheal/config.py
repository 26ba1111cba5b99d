"""Settings, read from Airflow's configuration section ``[selfheal]`` (or ``AIRFLOW__SELFHEAL__*`` variables).

Every task of the repair loop may run on a different worker, so anything a later task needs travels through
the artifacts root: a local folder by default, ``s3://bucket/prefix`` in production (see ``hooks/artifacts``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SECTION = "selfheal"


@dataclass(frozen=True)
class SelfhealSettings:
    """Resolved settings; see :func:`get_settings`."""

    artifacts_root: str
    artifacts_conn_id: str | None
    environment: str
    repair_dag_id: str


def _default_root() -> str:
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return f"file://{os.path.abspath(home)}/selfheal"


def get_settings() -> SelfhealSettings:
    """Read the ``[selfheal]`` section, with defaults that work on a single machine."""
    from airflow.configuration import conf

    return SelfhealSettings(
        artifacts_root=conf.get(SECTION, "artifacts_root", fallback=None) or _default_root(),
        artifacts_conn_id=conf.get(SECTION, "artifacts_conn_id", fallback=None) or None,
        environment=conf.get(SECTION, "environment", fallback="dev"),
        repair_dag_id=conf.get(SECTION, "repair_dag_id", fallback="selfheal_repair"),
    )
