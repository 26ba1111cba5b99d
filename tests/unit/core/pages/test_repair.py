"""The repair DAG's pages and the approval body."""

from __future__ import annotations

from typing import Any

from airflow_selfheal.core.pages.repair import approval_body
from tests.support.incidents import make_incident


class TestApproval:
    PROPOSAL: dict[str, Any] = {
        "fix_type": "column_rename",
        "tier": "auto",
        "rationale": "raw.orders.CUSTOMER_EMAIL was renamed to EMAIL_ADDRESS",
        "diff": "-    customer_email,\n+    email_address as customer_email,\n",
        "validation": {
            "select": "stg_orders+",
            "attempt": "attempt-1",
            "elapsed_seconds": 3.2,
            "nodes": [{"unique_id": "model.selfheal_demo.stg_orders", "status": "success"}],
        },
        "data_diff": {
            "relations": {
                "ANALYTICS.FCT_ORDERS": {
                    "status": "same",
                    "clone": {"row_count": 200},
                    "prod": {"row_count": 200},
                }
            }
        },
    }

    def test_body_has_diagnosis_diff_validation_and_data_diff(self) -> None:
        triage = {
            "failure_class": "missing_column",
            "summary": "column gone",
            "root_cause": {"message": "rename"},
        }
        body = approval_body(make_incident(), triage, self.PROPOSAL)
        for expected in (
            "### Diagnosis",
            "Root cause: rename",
            "+    email_address as customer_email,",
            "`model.selfheal_demo.stg_orders`: success",
            "| ANALYTICS.FCT_ORDERS | same | 200 | 200 |",
        ):
            assert expected in body
