"""Drift and fault scenarios: the changes upstream teams make to ``DEMO.RAW``, applied with real DDL and DML.

Each scenario first snapshots the raw tables it touches into ``DEMO.RAW_SCENARIO_BACKUP`` (a zero-copy
``CLONE`` on Snowflake, a copy on the stand-in), then runs its statements. ``reset`` recreates those tables
with the loader's DDL, copies the snapshot back and drops what the scenario created. That restores schema and
rows exactly, ``ORDERS._LOADED_AT`` included, which a reload from the seed would not (it stamps the time of
the reload). A snapshot is taken only when none exists, so stacked scenarios still reset to the loaded state.

Checked on the stand-in (fakesnow 0.12.1): ``RENAME COLUMN``, ``ADD COLUMN``, ``DROP COLUMN``,
``ALTER COLUMN ... SET DATA TYPE`` and ``RENAME TO`` all work as real ``ALTER TABLE`` statements.

Usage::

    python -m dev.scenarios list
    python -m dev.scenarios apply rename_column [--port 8765] [--data-dir .demo/warehouse]
    python -m dev.scenarios reset rename_column
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dev.loader import DATABASE, RAW_SCHEMA, RAW_TABLES, create_table_sql, qualified
from dev.warehouse import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Warehouse

BACKUP_SCHEMA = "RAW_SCENARIO_BACKUP"


def _existing_tables(conn: Any, schema: str) -> set[str]:
    rows = (
        conn.cursor()
        .execute(
            f"select table_name from {DATABASE}.information_schema.tables "
            "where table_schema = %s and table_type = 'BASE TABLE'",
            (schema,),
        )
        .fetchall()
    )
    return {str(row[0]).upper() for row in rows}


@dataclass(frozen=True)
class Scenario:
    """One reversible upstream change to the raw data.

    .. code-block:: python

        scenario = SCENARIOS["rename_column"]
        with warehouse.connect() as conn:
            scenario.apply(conn)  # ORDERS.CUSTOMER_EMAIL is now EMAIL_ADDRESS
            ...  # run the pipeline, watch it fail
            scenario.reset(conn)  # DEMO.RAW is exactly as loaded again

    :param name: registry key, also the CLI argument.
    :param description: what the upstream did, in one sentence.
    :param tables: raw tables the statements change; snapshotted before ``apply``.
    :param statements: the DDL/DML an upstream would run, in order.
    :param creates: tables the statements create, dropped by ``reset``.
    """

    name: str
    description: str
    tables: tuple[str, ...]
    statements: tuple[str, ...]
    creates: tuple[str, ...] = field(default=())

    def apply(self, conn: Any) -> None:
        """Snapshot the touched tables (unless a snapshot exists), then run the scenario's statements."""
        cursor = conn.cursor()
        cursor.execute(f"create schema if not exists {DATABASE}.{BACKUP_SCHEMA}")
        saved = _existing_tables(conn, BACKUP_SCHEMA)
        for table in self.tables:
            if table not in saved:
                cursor.execute(f"create table {qualified(table, BACKUP_SCHEMA)} clone {qualified(table)}")
        for statement in self.statements:
            cursor.execute(statement)

    def reset(self, conn: Any) -> bool:
        """Restore the touched tables from their snapshot; return whether a snapshot was found.

        The table is recreated from the loader's DDL rather than cloned back, so that column metadata is the
        loader's on the stand-in too (its copies drop the VARCHAR length).
        """
        cursor = conn.cursor()
        for table in self.creates:
            cursor.execute(f"drop table if exists {qualified(table)}")
        saved = _existing_tables(conn, BACKUP_SCHEMA)
        restored = False
        for table in self.tables:
            if table not in saved:
                continue
            cursor.execute(create_table_sql(table))
            cursor.execute(f"insert into {qualified(table)} select * from {qualified(table, BACKUP_SCHEMA)}")
            cursor.execute(f"drop table {qualified(table, BACKUP_SCHEMA)}")
            restored = True
        if saved and not _existing_tables(conn, BACKUP_SCHEMA):
            cursor.execute(f"drop schema if exists {DATABASE}.{BACKUP_SCHEMA}")
        return restored


def _amount_as_text() -> str:
    # Snowflake cannot ALTER a NUMBER column to VARCHAR (the stand-in can), so the upstream rebuilds the table
    # with the same column order, as a real one would. Valid on both.
    columns = ", ".join(
        "to_varchar(AMOUNT) as AMOUNT" if column == "AMOUNT" else column for column in RAW_TABLES["PAYMENTS"]
    )
    payments = qualified("PAYMENTS")
    return f"create or replace table {payments} as select {columns} from {payments}"


ORDERS = qualified("ORDERS")

SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="rename_column",
            description="The orders service renamed ORDERS.CUSTOMER_EMAIL to EMAIL_ADDRESS.",
            tables=("ORDERS",),
            statements=(f"alter table {ORDERS} rename column CUSTOMER_EMAIL to EMAIL_ADDRESS",),
        ),
        Scenario(
            name="drop_column",
            description="The payments team dropped PAYMENTS.PAYMENT_METHOD, which stg_payments reads.",
            tables=("PAYMENTS",),
            statements=(f"alter table {qualified('PAYMENTS')} drop column PAYMENT_METHOD",),
        ),
        Scenario(
            name="drop_unused_column",
            description="The CRM dropped CUSTOMERS.LEGACY_SEGMENT, which no model reads.",
            tables=("CUSTOMERS",),
            statements=(f"alter table {qualified('CUSTOMERS')} drop column LEGACY_SEGMENT",),
        ),
        Scenario(
            name="change_type",
            description="PAYMENTS.AMOUNT changed from NUMBER(10,2) to VARCHAR; the values are kept as text.",
            tables=("PAYMENTS",),
            statements=(_amount_as_text(),),
        ),
        Scenario(
            name="drop_table",
            description="The catalogue team dropped PRODUCTS.",
            tables=("PRODUCTS",),
            statements=(f"drop table {qualified('PRODUCTS')}",),
        ),
        Scenario(
            name="rename_table",
            description="The catalogue team renamed PRODUCTS to PRODUCT_CATALOG.",
            tables=("PRODUCTS",),
            statements=(f"alter table {qualified('PRODUCTS')} rename to {qualified('PRODUCT_CATALOG')}",),
            creates=("PRODUCT_CATALOG",),
        ),
        Scenario(
            name="add_column",
            description="ORDERS gained a DISCOUNT_CODE column, filled for some orders.",
            tables=("ORDERS",),
            statements=(
                f"alter table {ORDERS} add column DISCOUNT_CODE varchar",
                f"update {ORDERS} set DISCOUNT_CODE = 'WELCOME10' where mod(ORDER_ID, 7) = 0",
            ),
        ),
        Scenario(
            name="duplicate_keys",
            description="The ingestion job re-delivered a batch: every 25th order now appears twice.",
            tables=("ORDERS",),
            statements=(f"insert into {ORDERS} select * from {ORDERS} where mod(ORDER_ID, 25) = 0",),
        ),
        Scenario(
            name="null_keys",
            description="Guest checkouts arrive without a customer: some ORDERS.CUSTOMER_ID are NULL.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set CUSTOMER_ID = null where mod(ORDER_ID, 40) = 0",),
        ),
        Scenario(
            name="new_enum_value",
            description="The carrier integration added ORDERS.STATUS 'lost_in_transit'.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set STATUS = 'lost_in_transit' where mod(ORDER_ID, 30) = 0",),
        ),
        Scenario(
            name="stale_data",
            description="The ingestion job stalled: ORDERS was last loaded three days ago.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set _LOADED_AT = dateadd(day, -3, _LOADED_AT)",),
        ),
    )
}


def raw_fingerprint(conn: Any, schema: str = RAW_SCHEMA) -> str:
    """A hash of every table in ``schema``: its columns (name, type, size, position) and its sorted rows."""
    digest = hashlib.sha256()
    cursor = conn.cursor()
    columns = cursor.execute(
        "select table_name, column_name, data_type, numeric_precision, numeric_scale, "
        "character_maximum_length, is_nullable, ordinal_position "
        f"from {DATABASE}.information_schema.columns where table_schema = %s "
        "order by table_name, ordinal_position",
        (schema,),
    ).fetchall()
    width: dict[str, int] = {}
    for row in columns:
        digest.update(repr(row).encode())
        width[row[0]] = width.get(row[0], 0) + 1
    for table in sorted(_existing_tables(conn, schema) | set(width)):
        order_by = ", ".join(str(position) for position in range(1, width.get(table, 0) + 1)) or "1"
        digest.update(f"table {table}".encode())
        for row in cursor.execute(f"select * from {qualified(table, schema)} order by {order_by}").fetchall():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.scenarios", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "apply", "reset"])
    parser.add_argument("name", nargs="?", choices=sorted(SCENARIOS))
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    if args.command == "list":
        for scenario in SCENARIOS.values():
            print(f"{scenario.name:<20} {scenario.description}")
        return 0
    if args.name is None:
        parser.error(f"{args.command} needs a scenario name; see `python -m dev.scenarios list`")
    scenario = SCENARIOS[args.name]
    warehouse = Warehouse(args.host, args.port, Path(args.data_dir).resolve())
    with warehouse.connect() as conn:
        if args.command == "apply":
            scenario.apply(conn)
            print(f"applied {scenario.name}: {scenario.description}")
        elif scenario.reset(conn):
            print(f"reset {scenario.name}: {', '.join(scenario.tables)} restored")
        else:
            print(f"nothing to reset for {scenario.name}: no snapshot of {', '.join(scenario.tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
