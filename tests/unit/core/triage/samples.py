"""Error texts and drift events (as dicts) shared by the triage tests."""

from __future__ import annotations

from typing import Any

SF_MISSING_COLUMN = (
    "Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
    "  000904 (42000): SQL compilation error: error line 3 at position 4\n"
    "  invalid identifier 'CUSTOMER_EMAIL'\n"
    "  compiled code at target/run/shop/models/staging/stg_orders.sql"
)
FAKESNOW_CONVERSION = (
    "Database Error in model fct_orders (models/marts/fct_orders.sql)\n"
    "  100035 (22007): Conversion Error: Could not convert string 'abc' to INT64 when casting from source column AMOUNT"
)
FAKESNOW_MISSING_TABLE = (
    "Database Error in model m_missing_rel (models/m_missing_rel.sql)\n"
    "  002003 (42S02): Catalog Error: Table with name ORDERS_ARCHIVE does not exist!"
)


def rename_event(
    table: str = "RAW.ORDERS", confidence: float = 0.9, new_column: str = "EMAIL_ADDRESS"
) -> dict[str, Any]:
    return {
        "kind": "column_renamed",
        "table": table,
        "column": "CUSTOMER_EMAIL",
        "new_column": new_column,
        "confidence": confidence,
        "reason": "same type and position",
        "message": f"{table.lower()}.CUSTOMER_EMAIL was renamed to {new_column}.",
    }


def type_change_event(
    column: str, old_type: str = "NUMBER(10,2)", new_type: str = "VARCHAR"
) -> dict[str, Any]:
    return {
        "kind": "column_type_changed",
        "table": "RAW.ORDERS",
        "column": column,
        "old_type": old_type,
        "new_type": new_type,
    }
