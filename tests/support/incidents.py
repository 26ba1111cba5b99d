"""A stored incident for the repair loop's tests: the demo's ``stg_orders`` failed after an upstream rename."""

from __future__ import annotations

from typing import Any

RENAME_ERROR = (
    "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
    '  002043 (42000): Binder Error: Referenced column "CUSTOMER_EMAIL" not found in FROM clause!'
)


def make_incident(**overrides: Any) -> dict[str, Any]:
    """The incident's dict as the failure callback stores it; ``error`` replaces the error, other keys the fields."""
    from datetime import datetime, timezone

    from airflow_selfheal.core.incident import DbtNodeRef, build_incident

    incident = build_incident(
        pipeline="shop_pipeline",
        run_id="manual__1",
        task_id="shop.stg_orders.run",
        try_number=1,
        nodes=[
            DbtNodeRef(
                unique_id="model.selfheal_demo.stg_orders",
                resource_type="model",
                name="stg_orders",
                original_file_path="models/staging/stg_orders.sql",
            )
        ],
        error=overrides.pop("error", RENAME_ERROR),
        failed_at=datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc),
    )
    data = incident.to_dict()
    data.update(overrides)
    return data


def rename_triage() -> dict[str, Any]:
    """The triage the failure callback records for the upstream rename of ``RAW.ORDERS.CUSTOMER_EMAIL``."""
    from airflow_selfheal.core.drift import DriftEvent
    from airflow_selfheal.core.triage import classify

    rename = DriftEvent(
        kind="column_renamed",
        table="RAW.ORDERS",
        column="CUSTOMER_EMAIL",
        new_column="EMAIL_ADDRESS",
        old_type="VARCHAR",
        new_type="VARCHAR",
        confidence=0.9,
        reason="same type VARCHAR; same position 5",
    ).to_dict()
    return classify(
        RENAME_ERROR, resource_type="model", drift_events=[rename], lineage=["RAW.ORDERS"]
    ).to_dict()
