"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Return the provider description that ``airflow providers list`` shows."""
    from airflow_selfheal import __version__

    return {
        "package-name": "airflow-selfheal",
        "name": "Self-heal",
        "description": "Self-healing dbt pipelines: incident capture, triage, clone-validated fixes, "
        "human approval and promotion.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": "airflow_selfheal.hooks.snowflake.SelfhealSnowflakeHook",
                "connection-type": "selfheal_snowflake",
            },
        ],
    }
