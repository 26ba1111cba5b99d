"""Load the demo shop's raw data into ``DEMO.RAW`` through the real Snowflake connector.

The rows stand in for what an ingestion tool (Fivetran, Airbyte, a custom EL job) would land: explicit DDL,
then plain ``INSERT`` statements with bound parameters. They are pseudo-random but deterministic for a given
seed, so every run of the demo and the tests sees the same shop. Only ``ORDERS._LOADED_AT`` depends on the
clock: it is the load time (UTC), so ``dbt source freshness`` passes right after a load.

Usage::

    python -m dev.loader [--port 8765] [--data-dir .demo/warehouse] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from dev.warehouse import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Warehouse

DATABASE = "DEMO"
RAW_SCHEMA = "RAW"

# The one definition of the raw tables: column name -> Snowflake type, in table order.
RAW_TABLES: dict[str, dict[str, str]] = {
    "CUSTOMERS": {
        "CUSTOMER_ID": "NUMBER(38,0)",
        "FIRST_NAME": "VARCHAR",
        "LAST_NAME": "VARCHAR",
        "EMAIL": "VARCHAR",
        # Left over from an old CRM; no model reads it (the drop_unused_column scenario drops it).
        "LEGACY_SEGMENT": "VARCHAR",
        "CREATED_AT": "TIMESTAMP_NTZ",
    },
    "PRODUCTS": {
        "PRODUCT_ID": "NUMBER(38,0)",
        "NAME": "VARCHAR",
        "CATEGORY": "VARCHAR",
        "PRICE": "NUMBER(10,2)",
    },
    "ORDERS": {
        "ORDER_ID": "NUMBER(38,0)",
        "CUSTOMER_ID": "NUMBER(38,0)",
        "ORDER_DATE": "DATE",
        "STATUS": "VARCHAR",
        "CUSTOMER_EMAIL": "VARCHAR",
        "_LOADED_AT": "TIMESTAMP_NTZ",
    },
    "ORDER_ITEMS": {
        "ORDER_ITEM_ID": "NUMBER(38,0)",
        "ORDER_ID": "NUMBER(38,0)",
        "PRODUCT_ID": "NUMBER(38,0)",
        "QUANTITY": "NUMBER(38,0)",
    },
    "PAYMENTS": {
        "PAYMENT_ID": "NUMBER(38,0)",
        "ORDER_ID": "NUMBER(38,0)",
        "PAYMENT_METHOD": "VARCHAR",
        "AMOUNT": "NUMBER(10,2)",
        "CREATED_AT": "TIMESTAMP_NTZ",
    },
}

ORDER_STATUSES = ("placed", "shipped", "completed", "returned", "return_pending")
PAYMENT_METHODS = ("credit_card", "bank_transfer", "gift_card", "coupon")
LEGACY_SEGMENTS = ("gold", "silver", "bronze", None)
FIRST_NAMES = ("Ada", "Brian", "Chen", "Dana", "Emeka", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kai", "Lena")
LAST_NAMES = ("Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Weber")
PRODUCTS = (
    ("Classic Jaffle", "food", "7.50"),
    ("Vegan Jaffle", "food", "8.25"),
    ("Nutella Jaffle", "food", "6.00"),
    ("Cold Brew", "beverage", "4.50"),
    ("Flat White", "beverage", "3.80"),
    ("Orange Juice", "beverage", "3.20"),
    ("Jaffle Iron", "merchandise", "39.90"),
    ("Tote Bag", "merchandise", "12.00"),
)
# Fixed, so the rows depend on the seed alone; only _LOADED_AT follows the clock.
FIRST_ORDER_DATE = date(2025, 1, 1)
ORDER_DAYS = 90

CENT = Decimal("0.01")


def qualified(table: str, schema: str = RAW_SCHEMA, database: str = DATABASE) -> str:
    """``DATABASE.SCHEMA.TABLE`` for a raw table."""
    return f"{database}.{schema}.{table}"


def create_table_sql(table: str, schema: str = RAW_SCHEMA) -> str:
    """The ``CREATE OR REPLACE TABLE`` statement of one raw table."""
    columns = ",\n    ".join(f"{name} {type_}" for name, type_ in RAW_TABLES[table].items())
    return f"create or replace table {qualified(table, schema)} (\n    {columns}\n)"


def create_raw_schema(conn: Any) -> None:
    """(Re)create ``DEMO.RAW`` with every raw table, empty."""
    cursor = conn.cursor()
    cursor.execute(f"create schema if not exists {DATABASE}.{RAW_SCHEMA}")
    for table in RAW_TABLES:
        cursor.execute(create_table_sql(table))


def generate_rows(
    *, seed: int = 7, n_customers: int = 50, n_orders: int = 200, loaded_at: datetime | None = None
) -> dict[str, list[tuple[Any, ...]]]:
    """The raw rows per table, in ``RAW_TABLES`` column order; deterministic for a seed and ``loaded_at``."""
    rng = random.Random(seed)
    if loaded_at is None:
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)

    customers = []
    for customer_id in range(1, n_customers + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first.lower()}.{last.lower()}{customer_id}@example.com"
        created_at = datetime(2024, 1, 1) + timedelta(days=rng.randrange(365), minutes=rng.randrange(1440))
        customers.append((customer_id, first, last, email, rng.choice(LEGACY_SEGMENTS), created_at))

    products = [
        (product_id, name, category, Decimal(price))
        for product_id, (name, category, price) in enumerate(PRODUCTS, start=1)
    ]
    price_by_product = {row[0]: row[3] for row in products}

    orders, order_items, payments = [], [], []
    for order_id in range(1, n_orders + 1):
        customer = rng.choice(customers)
        order_date = FIRST_ORDER_DATE + timedelta(days=rng.randrange(ORDER_DAYS))
        status = rng.choices(ORDER_STATUSES, weights=(2, 3, 10, 1, 1))[0]
        orders.append((order_id, customer[0], order_date, status, customer[3], loaded_at))

        total = Decimal("0.00")
        for product_id in rng.sample(sorted(price_by_product), k=rng.randint(1, 3)):
            quantity = rng.randint(1, 3)
            order_items.append((len(order_items) + 1, order_id, product_id, quantity))
            total += price_by_product[product_id] * quantity

        # Most orders are paid in one go; some split the bill, and the parts always add up to the total.
        paid_at = datetime.combine(order_date, datetime.min.time()) + timedelta(minutes=rng.randrange(1440))
        parts = [total]
        if total > Decimal("10.00") and rng.random() < 0.25:
            first_part = (total * Decimal(rng.randint(20, 80)) / 100).quantize(CENT)
            parts = [first_part, total - first_part]
        for part in parts:
            payments.append((len(payments) + 1, order_id, rng.choice(PAYMENT_METHODS), part, paid_at))

    return {
        "CUSTOMERS": customers,
        "PRODUCTS": products,
        "ORDERS": orders,
        "ORDER_ITEMS": order_items,
        "PAYMENTS": payments,
    }


def insert_rows(conn: Any, table: str, rows: list[tuple[Any, ...]], schema: str = RAW_SCHEMA) -> None:
    """Insert ``rows`` (in ``RAW_TABLES`` column order) with bound parameters."""
    columns = list(RAW_TABLES[table])
    placeholders = ", ".join(["%s"] * len(columns))
    conn.cursor().executemany(
        f"insert into {qualified(table, schema)} ({', '.join(columns)}) values ({placeholders})", rows
    )


def load_raw(
    conn: Any,
    *,
    seed: int = 7,
    n_customers: int = 50,
    n_orders: int = 200,
    loaded_at: datetime | None = None,
) -> dict[str, int]:
    """(Re)create ``DEMO.RAW`` and fill it with the demo shop; return the row count per table.

    :param conn: an open ``snowflake.connector`` connection (database ``DEMO``).
    :param seed: seed of the pseudo-random rows; the same seed gives the same rows.
    :param loaded_at: the ``ORDERS._LOADED_AT`` stamp (naive UTC); default now.
    :return: rows per table, as counted in the warehouse after the load.
    """
    rows = generate_rows(seed=seed, n_customers=n_customers, n_orders=n_orders, loaded_at=loaded_at)
    create_raw_schema(conn)
    for table, table_rows in rows.items():
        insert_rows(conn, table, table_rows)
    cursor = conn.cursor()
    return {
        table: int(cursor.execute(f"select count(*) from {qualified(table)}").fetchone()[0])
        for table in RAW_TABLES
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.loader", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    warehouse = Warehouse(args.host, args.port, Path(args.data_dir).resolve())
    with warehouse.connect() as conn:
        counts = load_raw(conn, seed=args.seed)
    print(", ".join(f"{DATABASE}.{RAW_SCHEMA}.{table}: {rows} rows" for table, rows in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
