"""Load a dev project's raw data (the shop's ``DEMO.RAW``, the bike share's ``RIDES.LANDING``) through the real connector.

The rows stand in for what an ingestion tool (Fivetran, Airbyte, a custom EL job) would land: explicit DDL,
then plain ``INSERT`` statements with bound parameters. They are pseudo-random but deterministic for a given
seed, so every run of the demo and the tests sees the same data. Only the ingestion timestamps
(``ORDERS._LOADED_AT``; ``TRIPS._SYNCED_AT`` and ``DOCK_EVENTS._SYNCED_AT``) depend on the clock: they are the
load time (UTC), so ``dbt source freshness`` passes right after a load.

:class:`RawLayout` says where a project's raw tables live and what they look like. The scenarios and the
project registry (``dev/projects.py``) use it, so nothing is hard-wired to one database.

Usage::

    python -m dev.loader [--project shop|rides] [--port 8765] [--data-dir .demo/warehouse] [--seed 7]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev.warehouse import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Warehouse

if TYPE_CHECKING:
    from collections.abc import Mapping

Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class RawLayout:
    """Where a project's raw tables live, and their DDL.

    .. code-block:: python

        layout = RawLayout("RIDES", "LANDING", {"TRIPS": {"TRIP_ID": "NUMBER(38,0)"}})
        layout.qualified("TRIPS")  # 'RIDES.LANDING.TRIPS'

    :param database: the database holding the raw schema.
    :param schema: the raw (landing) schema.
    :param tables: the one definition of the raw tables: column name -> Snowflake type, in table order.
    """

    database: str
    schema: str
    tables: Mapping[str, Mapping[str, str]]

    def qualified(self, table: str, schema: str | None = None) -> str:
        """``DATABASE.SCHEMA.TABLE`` for a raw table, or for its copy in another schema."""
        return f"{self.database}.{schema or self.schema}.{table}"

    def columns(self, table: str) -> list[str]:
        """The table's column names in order; an unknown table is an error that names the known ones."""
        if table not in self.tables:
            raise KeyError(
                f"{table} is not a raw table of {self.database}.{self.schema}; known: {', '.join(self.tables)}"
            )
        return list(self.tables[table])

    def create_table_sql(self, table: str, schema: str | None = None) -> str:
        """The ``CREATE OR REPLACE TABLE`` statement of one raw table."""
        columns = ",\n    ".join(f"{name} {type_}" for name, type_ in self.tables[table].items())
        return f"create or replace table {self.qualified(table, schema)} (\n    {columns}\n)"

    def create_schema(self, conn: Any) -> None:
        """(Re)create the raw schema with every raw table, empty."""
        cursor = conn.cursor()
        cursor.execute(f"create schema if not exists {self.database}.{self.schema}")
        for table in self.tables:
            cursor.execute(self.create_table_sql(table))

    def insert_rows(
        self, conn: Any, table: str, rows: list[tuple[Any, ...]], schema: str | None = None
    ) -> None:
        """Insert ``rows`` (in column order) with bound parameters."""
        columns = self.columns(table)
        placeholders = ", ".join(["%s"] * len(columns))
        conn.cursor().executemany(
            f"insert into {self.qualified(table, schema)} ({', '.join(columns)}) values ({placeholders})",
            rows,
        )

    def load(self, conn: Any, rows: Mapping[str, list[tuple[Any, ...]]]) -> dict[str, int]:
        """(Re)create the raw schema, insert ``rows``; return the row count per table, counted in the warehouse."""
        unknown = sorted(set(rows) - set(self.tables))
        if unknown:
            raise KeyError(f"rows given for {unknown}, which {self.database}.{self.schema} does not define")
        self.create_schema(conn)
        for table, table_rows in rows.items():
            if table_rows:
                self.insert_rows(conn, table, table_rows)
        cursor = conn.cursor()
        return {
            table: int(cursor.execute(f"select count(*) from {self.qualified(table)}").fetchone()[0])
            for table in self.tables
        }

    def existing_tables(self, conn: Any, schema: str | None = None) -> set[str]:
        """Upper-case names of the base tables in ``schema`` (default: the raw schema) right now."""
        rows = (
            conn.cursor()
            .execute(
                f"select table_name from {self.database}.information_schema.tables "
                "where table_schema = %s and table_type = 'BASE TABLE'",
                (schema or self.schema,),
            )
            .fetchall()
        )
        return {str(row[0]).upper() for row in rows}

    def records(self, rows: Mapping[str, list[tuple[Any, ...]]], table: str) -> list[dict[str, Any]]:
        """A table's generated rows as dicts keyed by column name (for oracles and tests)."""
        columns = self.columns(table)
        return [dict(zip(columns, row, strict=True)) for row in rows.get(table, [])]


# ---------------------------------------------------------------------------------------------------------------
# The demo shop: DEMO.RAW
# ---------------------------------------------------------------------------------------------------------------

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


SHOP_RAW = RawLayout(DATABASE, RAW_SCHEMA, RAW_TABLES)


def qualified(table: str, schema: str = RAW_SCHEMA, database: str = DATABASE) -> str:
    """``DATABASE.SCHEMA.TABLE`` for a raw table."""
    return f"{database}.{schema}.{table}"


def create_table_sql(table: str, schema: str = RAW_SCHEMA) -> str:
    """The ``CREATE OR REPLACE TABLE`` statement of one raw table of the shop."""
    return SHOP_RAW.create_table_sql(table, schema)


def create_raw_schema(conn: Any) -> None:
    """(Re)create ``DEMO.RAW`` with every raw table, empty."""
    SHOP_RAW.create_schema(conn)


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

    orders: list[tuple[Any, ...]] = []
    order_items: list[tuple[Any, ...]] = []
    payments: list[tuple[Any, ...]] = []
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
    SHOP_RAW.insert_rows(conn, table, rows, schema)


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
    return SHOP_RAW.load(conn, rows)


# ---------------------------------------------------------------------------------------------------------------
# The bike share: RIDES.LANDING
# ---------------------------------------------------------------------------------------------------------------

RIDES_DATABASE = "RIDES"
RIDES_RAW_SCHEMA = "LANDING"

RIDES_RAW_TABLES: dict[str, dict[str, str]] = {
    "STATIONS": {
        "STATION_ID": "NUMBER(38,0)",
        "STATION_NAME": "VARCHAR",
        "DISTRICT": "VARCHAR",
        "LATITUDE": "NUMBER(9,6)",
        "LONGITUDE": "NUMBER(9,6)",
        "DOCK_COUNT": "NUMBER(38,0)",
        "OPENED_ON": "DATE",
    },
    "BIKES": {
        "BIKE_ID": "NUMBER(38,0)",
        "SERIAL_NUMBER": "VARCHAR",
        "BIKE_TYPE": "VARCHAR",
        # Staged by stg_fleet__bikes for ad-hoc queries; no model downstream reads it (drop_unused_column).
        "FIRMWARE_VERSION": "VARCHAR",
        "COMMISSIONED_ON": "DATE",
    },
    "MEMBERS": {
        "MEMBER_ID": "NUMBER(38,0)",
        "EMAIL": "VARCHAR",
        "PLAN_CODE": "VARCHAR",
        "HOME_STATION_ID": "NUMBER(38,0)",
        "SIGNED_UP_AT": "TIMESTAMP_NTZ",
    },
    "TRIPS": {
        "TRIP_ID": "NUMBER(38,0)",
        "MEMBER_ID": "NUMBER(38,0)",
        "BIKE_ID": "NUMBER(38,0)",
        "START_STATION_ID": "NUMBER(38,0)",
        "END_STATION_ID": "NUMBER(38,0)",
        "STARTED_AT": "TIMESTAMP_NTZ",
        "ENDED_AT": "TIMESTAMP_NTZ",
        "DISTANCE_M": "NUMBER(10,0)",
        "_SYNCED_AT": "TIMESTAMP_NTZ",
    },
    "TRIP_CHARGES": {
        "CHARGE_ID": "NUMBER(38,0)",
        "TRIP_ID": "NUMBER(38,0)",
        "CHARGE_TYPE": "VARCHAR",
        "AMOUNT_CENTS": "NUMBER(10,0)",
        "CURRENCY": "VARCHAR",
        "CHARGED_AT": "TIMESTAMP_NTZ",
    },
    "DOCK_EVENTS": {
        "EVENT_ID": "NUMBER(38,0)",
        "STATION_ID": "NUMBER(38,0)",
        "BIKE_ID": "NUMBER(38,0)",
        "EVENT_TYPE": "VARCHAR",
        "EVENT_AT": "TIMESTAMP_NTZ",
        "_SYNCED_AT": "TIMESTAMP_NTZ",
    },
}
RIDES_RAW = RawLayout(RIDES_DATABASE, RIDES_RAW_SCHEMA, RIDES_RAW_TABLES)

STATIONS = (
    ("Alexanderplatz", "Mitte"),
    ("Hackescher Markt", "Mitte"),
    ("Nordbahnhof", "Mitte"),
    ("Kottbusser Tor", "Kreuzberg"),
    ("Goerlitzer Park", "Kreuzberg"),
    ("Mehringdamm", "Kreuzberg"),
    ("Boxhagener Platz", "Friedrichshain"),
    ("Ostkreuz", "Friedrichshain"),
    ("Mauerpark", "Prenzlauer Berg"),
    ("Kollwitzplatz", "Prenzlauer Berg"),
    ("Hermannplatz", "Neukoelln"),
    ("Tempelhofer Feld", "Neukoelln"),
)
BIKE_TYPES = ("classic", "electric", "cargo")
PLANS = ("annual", "monthly", "day_pass")
BILLING_CURRENCY = "EUR"
# Cents. Annual members unlock for free and ride their first minutes free.
UNLOCK_FEE_CENTS = 100
RATE_CENTS_PER_MINUTE = {"classic": 15, "electric": 30, "cargo": 35}
ANNUAL_FREE_MINUTES = 30
OUT_OF_ZONE_FEE_CENTS = 250
# The project's var('min_trip_seconds'): shorter trips are false starts, never billed.
MIN_TRIP_SECONDS = 60
FIRST_RIDE_DAY = date(2025, 3, 1)
RIDE_DAYS = 60
FIRST_TRIP_ID = 100_001


def trip_charges_cents(
    *, plan: str, bike_type: str, duration_seconds: int, out_of_zone: bool
) -> dict[str, int]:
    """What a trip is billed, per charge type, in cents; the rules are the operator's tariff, not the models'."""
    if duration_seconds < MIN_TRIP_SECONDS:
        return {}
    minutes = math.ceil(duration_seconds / 60)
    charges: dict[str, int] = {}
    if plan != "annual":
        charges["unlock"] = UNLOCK_FEE_CENTS
    billable_minutes = max(0, minutes - ANNUAL_FREE_MINUTES) if plan == "annual" else minutes
    if billable_minutes:
        charges["ride_time"] = billable_minutes * RATE_CENTS_PER_MINUTE[bike_type]
    if out_of_zone:
        charges["out_of_zone"] = OUT_OF_ZONE_FEE_CENTS
    return charges


def generate_rides_rows(
    *,
    seed: int = 11,
    n_bikes: int = 40,
    n_members: int = 60,
    n_trips: int = 300,
    loaded_at: datetime | None = None,
) -> Rows:
    """The bike share's raw rows per table, in ``RIDES_RAW_TABLES`` column order.

    Deterministic for a seed and ``loaded_at`` (the ``_SYNCED_AT`` stamp, naive UTC; default now). About one
    trip in twelve is a false start; a sixth of the members never ride.
    """
    rng = random.Random(seed)
    if loaded_at is None:
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)

    stations = []
    for station_id, (name, district) in enumerate(STATIONS, start=1):
        latitude = Decimal(f"{52.50 + rng.uniform(-0.04, 0.04):.6f}")
        longitude = Decimal(f"{13.40 + rng.uniform(-0.08, 0.08):.6f}")
        opened_on = date(2019, 4, 1) + timedelta(days=rng.randrange(1500))
        stations.append(
            (station_id, name, district, latitude, longitude, rng.choice((12, 16, 20, 24)), opened_on)
        )

    bikes = []
    for bike_id in range(1, n_bikes + 1):
        bike_type = rng.choices(BIKE_TYPES, weights=(5, 4, 1))[0]
        commissioned_on = date(2021, 1, 1) + timedelta(days=rng.randrange(1200))
        firmware = f"v2.{rng.randint(0, 9)}.{rng.randint(0, 20)}"
        bikes.append(
            (bike_id, f"bs-{commissioned_on.year}-{bike_id:05d}", bike_type, firmware, commissioned_on)
        )

    members = []
    for member_id in range(1, n_members + 1):
        plan = rng.choices(PLANS, weights=(3, 4, 3))[0]
        home_station = rng.choice(stations)[0] if rng.random() < 0.75 else None
        signed_up_at = datetime(2023, 6, 1) + timedelta(days=rng.randrange(600), minutes=rng.randrange(1440))
        members.append((member_id, f"Rider{member_id}@Example.org", plan, home_station, signed_up_at))
    riders = members[: max(1, n_members * 5 // 6)]

    trips: list[tuple[Any, ...]] = []
    charges: list[tuple[Any, ...]] = []
    dock_events: list[tuple[Any, ...]] = []
    for trip_id in range(FIRST_TRIP_ID, FIRST_TRIP_ID + n_trips):
        member, bike = rng.choice(riders), rng.choice(bikes)
        start_station = rng.choice(stations)[0]
        end_station = start_station if rng.random() < 0.15 else rng.choice(stations)[0]
        started_at = datetime.combine(FIRST_RIDE_DAY, datetime.min.time()) + timedelta(
            days=rng.randrange(RIDE_DAYS), minutes=rng.randrange(6 * 60, 23 * 60), seconds=rng.randrange(60)
        )
        false_start = rng.random() < 0.08
        duration = rng.randint(5, MIN_TRIP_SECONDS - 1) if false_start else rng.randint(2 * 60, 70 * 60)
        ended_at = started_at + timedelta(seconds=duration)
        distance = 0 if false_start else min(100_000, duration // 60 * rng.randint(150, 300))
        trips.append(
            (
                trip_id,
                member[0],
                bike[0],
                start_station,
                end_station,
                started_at,
                ended_at,
                distance,
                loaded_at,
            )
        )
        billed = trip_charges_cents(
            plan=member[2], bike_type=bike[2], duration_seconds=duration, out_of_zone=rng.random() < 0.05
        )
        for charge_type, cents in billed.items():
            charges.append((len(charges) + 1, trip_id, charge_type, cents, BILLING_CURRENCY, ended_at))
        for station, event_type, event_at in (
            (start_station, "undock", started_at),
            (end_station, "dock", ended_at),
        ):
            dock_events.append((len(dock_events) + 1, station, bike[0], event_type, event_at, loaded_at))

    return {
        "STATIONS": stations,
        "BIKES": bikes,
        "MEMBERS": members,
        "TRIPS": trips,
        "TRIP_CHARGES": charges,
        "DOCK_EVENTS": dock_events,
    }


def load_rides(conn: Any, *, seed: int = 11, loaded_at: datetime | None = None) -> dict[str, int]:
    """(Re)create ``RIDES.LANDING`` and fill it with the bike share; return the row count per table.

    :param conn: an open ``snowflake.connector`` connection (database ``RIDES``).
    :param seed: seed of the pseudo-random rows; the same seed gives the same rows.
    :param loaded_at: the ``_SYNCED_AT`` stamp (naive UTC); default now.
    """
    return RIDES_RAW.load(conn, generate_rides_rows(seed=seed, loaded_at=loaded_at))


def main(argv: list[str] | None = None) -> int:
    from dev.projects import PROJECTS

    parser = argparse.ArgumentParser(prog="python -m dev.loader", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--project", choices=sorted(PROJECTS), default="shop", help="which dev project's raw data"
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--seed", type=int, default=None, help="default: the project's own seed")
    args = parser.parse_args(argv)
    project = PROJECTS[args.project]
    warehouse = Warehouse(args.host, args.port, Path(args.data_dir).resolve())
    with warehouse.connect(database=project.database) as conn:
        counts = project.load(conn, seed=args.seed)
    print(", ".join(f"{project.raw.qualified(table)}: {rows} rows" for table, rows in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
