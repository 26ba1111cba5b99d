"""Provider metadata, read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any


def _option(description: str, example: str | None, default: str | None) -> dict[str, Any]:
    return {
        "description": description,
        "version_added": "0.1.0",
        "type": "string",
        "example": example,
        "default": default,
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider description that ``airflow providers list`` and ``airflow config`` show."""
    from airflow_selfheal import __version__

    return {
        "package-name": "airflow-selfheal",
        "name": "Self-heal",
        "description": "Self-healing dbt pipelines: incident capture, triage, clone-validated fixes, "
        "human approval and promotion.",
        "versions": [__version__],
        "hooks": [
            {
                "integration-name": "Self-heal",
                "python-modules": [
                    "airflow_selfheal.hooks.snowflake",
                    "airflow_selfheal.hooks.pagerduty",
                    "airflow_selfheal.hooks.snowflake_clone",
                    "airflow_selfheal.hooks.git",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Self-heal",
                "python-modules": ["airflow_selfheal.operators.drift", "airflow_selfheal.operators.backstop"],
            },
        ],
        "notifications": ["airflow_selfheal.notifications.failure.SelfhealFailureNotifier"],
        "config": {
            "selfheal": {
                "description": "Settings of the airflow-selfheal repair loop.",
                "options": {
                    "artifacts_root": _option(
                        "Where incidents, proposals, baselines and audit records live, shared by all workers: "
                        "a local folder (default: $AIRFLOW_HOME/selfheal) or an s3:// or gs:// URL.",
                        "s3://my-bucket/selfheal",
                        None,
                    ),
                    "artifacts_conn_id": _option(
                        "Airflow connection for the artifacts root's object store.", "aws_default", None
                    ),
                    "environment": _option("Environment name shown on incidents and pages.", "prod", "dev"),
                    "repair_dag_id": _option(
                        "DAG started for each new incident.", "selfheal_repair", "selfheal_repair"
                    ),
                },
            }
        },
    }
