"""Drift and fault scenarios: the changes upstream teams make to a project's raw data, applied with real DDL and DML.

There is one registry per dev project: :data:`SCENARIOS` for the shop (``DEMO.RAW``), :data:`RIDES_SCENARIOS`
for the bike share (``RIDES.LANDING``). Each scenario also records, as plain data, what is expected of it: the
failure class (a :class:`airflow_selfheal.core.triage.FailureClass` value), the outcome of a correct repair loop
and the nodes plain dbt fails on (the embedded stand-in; on Snowflake a type change may pass, see DESIGN.md).

Each scenario first snapshots the raw tables it touches into ``<RAW SCHEMA>_SCENARIO_BACKUP`` (a zero-copy
``CLONE`` on Snowflake, a copy on the stand-in), then runs its statements. ``reset`` recreates those tables
with the loader's DDL, copies the snapshot back and drops what the scenario created. That restores schema and
rows exactly, ingestion timestamps included, which a reload from the seed would not (it stamps the time of
the reload). A snapshot is taken only when none exists, so stacked scenarios still reset to the loaded state.

Checked on the stand-in (fakesnow 0.12.1): ``RENAME COLUMN``, ``ADD COLUMN``, ``DROP COLUMN``,
``ALTER COLUMN ... SET DATA TYPE`` and ``RENAME TO`` all work as real ``ALTER TABLE`` statements.

Usage::

    python -m dev.scenarios list [--project shop|rides]
    python -m dev.scenarios apply rename_column [--project rides] [--port 8765] [--data-dir .demo/warehouse]
    python -m dev.scenarios reset rename_column [--project rides]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dev.loader import RIDES_RAW, SHOP_RAW, RawLayout, qualified
from dev.warehouse import DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, Warehouse

if TYPE_CHECKING:
    from collections.abc import Mapping

BACKUP_SUFFIX = "_SCENARIO_BACKUP"
BACKUP_SCHEMA = SHOP_RAW.schema + BACKUP_SUFFIX
# What a correct repair loop ends with.
OUTCOMES = ("repaired", "escalated", "retried", "no_incident")
# Which oracle values hold after that outcome; "clean": the values of the rows as loaded (see dev/oracles.py).
ORACLE_STATES = ("clean",)


def backup_schema(raw: RawLayout) -> str:
    """The schema that holds the scenario snapshots of ``raw``'s tables."""
    return raw.schema + BACKUP_SUFFIX


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
    :param raw: where the raw tables live (default: the shop's ``DEMO.RAW``).
    :param expected_class: the failure class plain dbt shows (a ``FailureClass`` value); None if nothing fails.
    :param expected_outcome: what a correct repair loop ends with, one of :data:`OUTCOMES`.
    :param failing_nodes: unique-id prefixes (the id without a test's hash suffix) of exactly the nodes that
        error or fail in ``dbt_command``; empty when it passes.
    :param dbt_command: the plain dbt command that shows the failure, on the affected subgraph.
    :param oracles_after: which oracle values the marts hold after ``expected_outcome``, one of
        :data:`ORACLE_STATES`.
    """

    name: str
    description: str
    tables: tuple[str, ...]
    statements: tuple[str, ...]
    creates: tuple[str, ...] = field(default=())
    raw: RawLayout = SHOP_RAW
    expected_class: str | None = None
    expected_outcome: str = "no_incident"
    failing_nodes: tuple[str, ...] = ()
    dbt_command: tuple[str, ...] = ()
    oracles_after: str = "clean"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tables) - set(self.raw.tables))
        if unknown:
            raise ValueError(
                f"scenario {self.name}: {unknown} are not raw tables of {self.raw.database}.{self.raw.schema}; "
                f"name tables of {', '.join(self.raw.tables)}"
            )
        if self.expected_outcome not in OUTCOMES:
            raise ValueError(f"scenario {self.name}: expected_outcome must be one of {OUTCOMES}")
        if self.oracles_after not in ORACLE_STATES:
            raise ValueError(f"scenario {self.name}: oracles_after must be one of {ORACLE_STATES}")
        if bool(self.failing_nodes) != (self.expected_class is not None):
            raise ValueError(
                f"scenario {self.name}: give failing_nodes and expected_class together, or neither"
            )

    def is_failing_node(self, unique_id: str) -> bool:
        """Whether ``unique_id`` is one of the nodes this scenario is expected to break."""
        # A test's id ends in a hash, and dbt shortens long test names with a hash too.
        return any(
            unique_id == node
            or unique_id.startswith(node + ".")
            or (node.startswith("test.") and unique_id.startswith(node + "_"))
            for node in self.failing_nodes
        )

    def apply(self, conn: Any) -> None:
        """Snapshot the touched tables (unless a snapshot exists), then run the scenario's statements."""
        raw, backup = self.raw, backup_schema(self.raw)
        cursor = conn.cursor()
        cursor.execute(f"create schema if not exists {raw.database}.{backup}")
        saved = raw.existing_tables(conn, backup)
        for table in self.tables:
            if table not in saved:
                cursor.execute(f"create table {raw.qualified(table, backup)} clone {raw.qualified(table)}")
        for statement in self.statements:
            cursor.execute(statement)

    def reset(self, conn: Any) -> bool:
        """Restore the touched tables from their snapshot; return whether a snapshot was found.

        The table is recreated from the loader's DDL rather than cloned back, so that column metadata is the
        loader's on the stand-in too (its copies drop the VARCHAR length).
        """
        raw, backup = self.raw, backup_schema(self.raw)
        cursor = conn.cursor()
        for table in self.creates:
            cursor.execute(f"drop table if exists {raw.qualified(table)}")
        saved = raw.existing_tables(conn, backup)
        restored = False
        for table in self.tables:
            if table not in saved:
                continue
            cursor.execute(raw.create_table_sql(table))
            cursor.execute(f"insert into {raw.qualified(table)} select * from {raw.qualified(table, backup)}")
            cursor.execute(f"drop table {raw.qualified(table, backup)}")
            restored = True
        if saved and not raw.existing_tables(conn, backup):
            cursor.execute(f"drop schema if exists {raw.database}.{backup}")
        return restored


def column_as_text(raw: RawLayout, table: str, column: str) -> str:
    """The statement that turns a numeric ``table.column`` into text values, keeping the column order.

    Snowflake cannot ALTER a NUMBER column to VARCHAR (the stand-in can), so the upstream rebuilds the table
    with the same column order, as a real one would. Valid on both.
    """
    columns = raw.columns(table)
    if column not in columns:
        raise KeyError(f"{column} is not a column of {raw.qualified(table)}: {', '.join(columns)}")
    select_list = ", ".join(f"to_varchar({name}) as {name}" if name == column else name for name in columns)
    qualified_table = raw.qualified(table)
    return f"create or replace table {qualified_table} as select {select_list} from {qualified_table}"


def _amount_as_text() -> str:
    return column_as_text(SHOP_RAW, "PAYMENTS", "AMOUNT")


ORDERS = qualified("ORDERS")


def _build(selector: str) -> tuple[str, ...]:
    return ("build", "--select", selector)


def _freshness(selector: str) -> tuple[str, ...]:
    return ("source", "freshness", "--select", selector)


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="rename_column",
            description="The orders service renamed ORDERS.CUSTOMER_EMAIL to EMAIL_ADDRESS.",
            tables=("ORDERS",),
            statements=(f"alter table {ORDERS} rename column CUSTOMER_EMAIL to EMAIL_ADDRESS",),
            expected_class="missing_column",
            expected_outcome="repaired",
            failing_nodes=("model.selfheal_demo.stg_orders",),
            dbt_command=_build("source:raw.orders+"),
        ),
        Scenario(
            name="drop_column",
            description="The payments team dropped PAYMENTS.PAYMENT_METHOD, which stg_payments reads.",
            tables=("PAYMENTS",),
            statements=(f"alter table {qualified('PAYMENTS')} drop column PAYMENT_METHOD",),
            expected_class="missing_column",
            expected_outcome="escalated",
            failing_nodes=("model.selfheal_demo.stg_payments",),
            dbt_command=_build("source:raw.payments+"),
        ),
        Scenario(
            name="drop_unused_column",
            description="The CRM dropped CUSTOMERS.LEGACY_SEGMENT, which no model reads.",
            tables=("CUSTOMERS",),
            statements=(f"alter table {qualified('CUSTOMERS')} drop column LEGACY_SEGMENT",),
            expected_outcome="no_incident",
            dbt_command=_build("source:raw.customers+"),
        ),
        Scenario(
            name="change_type",
            description="PAYMENTS.AMOUNT changed from NUMBER(10,2) to VARCHAR; the values are kept as text.",
            tables=("PAYMENTS",),
            statements=(_amount_as_text(),),
            expected_class="type_mismatch",
            expected_outcome="repaired",
            failing_nodes=("model.selfheal_demo.int_order_payments",),
            dbt_command=_build("source:raw.payments+"),
        ),
        Scenario(
            name="drop_table",
            description="The catalogue team dropped PRODUCTS.",
            tables=("PRODUCTS",),
            statements=(f"drop table {qualified('PRODUCTS')}",),
            expected_class="missing_relation",
            expected_outcome="escalated",
            failing_nodes=(
                "test.selfheal_demo.source_not_null_raw_products_PRODUCT_ID",
                "test.selfheal_demo.source_unique_raw_products_PRODUCT_ID",
            ),
            dbt_command=_build("source:raw.products+"),
        ),
        Scenario(
            name="rename_table",
            description="The catalogue team renamed PRODUCTS to PRODUCT_CATALOG.",
            tables=("PRODUCTS",),
            statements=(f"alter table {qualified('PRODUCTS')} rename to {qualified('PRODUCT_CATALOG')}",),
            creates=("PRODUCT_CATALOG",),
            expected_class="missing_relation",
            expected_outcome="repaired",
            failing_nodes=(
                "test.selfheal_demo.source_not_null_raw_products_PRODUCT_ID",
                "test.selfheal_demo.source_unique_raw_products_PRODUCT_ID",
            ),
            dbt_command=_build("source:raw.products+"),
        ),
        Scenario(
            name="add_column",
            description="ORDERS gained a DISCOUNT_CODE column, filled for some orders.",
            tables=("ORDERS",),
            statements=(
                f"alter table {ORDERS} add column DISCOUNT_CODE varchar",
                f"update {ORDERS} set DISCOUNT_CODE = 'WELCOME10' where mod(ORDER_ID, 7) = 0",
            ),
            expected_outcome="no_incident",
            dbt_command=_build("source:raw.orders+"),
        ),
        Scenario(
            name="duplicate_keys",
            description="The ingestion job re-delivered a batch: every 25th order now appears twice.",
            tables=("ORDERS",),
            statements=(f"insert into {ORDERS} select * from {ORDERS} where mod(ORDER_ID, 25) = 0",),
            expected_class="test_unique",
            expected_outcome="repaired",
            failing_nodes=("test.selfheal_demo.source_unique_raw_orders_ORDER_ID",),
            dbt_command=_build("source:raw.orders+"),
        ),
        Scenario(
            name="null_keys",
            description="Guest checkouts arrive without a customer: some ORDERS.CUSTOMER_ID are NULL.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set CUSTOMER_ID = null where mod(ORDER_ID, 40) = 0",),
            expected_class="test_not_null",
            expected_outcome="escalated",
            failing_nodes=("test.selfheal_demo.source_not_null_raw_orders_CUSTOMER_ID",),
            dbt_command=_build("source:raw.orders+"),
        ),
        Scenario(
            name="new_enum_value",
            description="The carrier integration added ORDERS.STATUS 'lost_in_transit'.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set STATUS = 'lost_in_transit' where mod(ORDER_ID, 30) = 0",),
            expected_class="test_accepted_values",
            expected_outcome="repaired",
            failing_nodes=("test.selfheal_demo.accepted_values_stg_orders_status",),
            dbt_command=_build("source:raw.orders+"),
        ),
        Scenario(
            name="stale_data",
            description="The ingestion job stalled: ORDERS was last loaded three days ago.",
            tables=("ORDERS",),
            statements=(f"update {ORDERS} set _LOADED_AT = dateadd(day, -3, _LOADED_AT)",),
            expected_class="source_freshness",
            expected_outcome="escalated",
            failing_nodes=("source.selfheal_demo.raw.orders",),
            dbt_command=_freshness("source:raw.orders"),
        ),
    )
}


def _rides(table: str) -> str:
    return RIDES_RAW.qualified(table)


TRIPS, TRIP_CHARGES = _rides("TRIPS"), _rides("TRIP_CHARGES")
R = "rides"

RIDES_SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="rename_column",
            description="The app backend renamed TRIPS.DISTANCE_M to DISTANCE_METERS.",
            tables=("TRIPS",),
            statements=(f"alter table {TRIPS} rename column DISTANCE_M to DISTANCE_METERS",),
            raw=RIDES_RAW,
            expected_class="missing_column",
            expected_outcome="repaired",
            failing_nodes=(f"model.{R}.stg_app__trips",),
            dbt_command=_build("source:app.trips+"),
        ),
        Scenario(
            name="change_type",
            description="TRIP_CHARGES.AMOUNT_CENTS changed from NUMBER(10,0) to VARCHAR; the values are kept as text.",
            tables=("TRIP_CHARGES",),
            statements=(column_as_text(RIDES_RAW, "TRIP_CHARGES", "AMOUNT_CENTS"),),
            raw=RIDES_RAW,
            expected_class="type_mismatch",
            expected_outcome="repaired",
            # The stand-in refuses arithmetic on VARCHAR in the staging model; Snowflake would cast implicitly.
            failing_nodes=(f"model.{R}.stg_app__trip_charges",),
            dbt_command=_build("source:app.trip_charges+"),
        ),
        Scenario(
            name="drop_unused_column",
            description="The fleet system dropped BIKES.FIRMWARE_VERSION, which stg_fleet__bikes stages and nothing reads.",
            tables=("BIKES",),
            statements=(f"alter table {_rides('BIKES')} drop column FIRMWARE_VERSION",),
            raw=RIDES_RAW,
            expected_class="missing_column",
            expected_outcome="repaired",
            failing_nodes=(f"model.{R}.stg_fleet__bikes",),
            dbt_command=_build("source:fleet.bikes+"),
        ),
        Scenario(
            name="drop_column",
            description="The app backend dropped MEMBERS.PLAN_CODE, which the members and finance marts group by.",
            tables=("MEMBERS",),
            statements=(f"alter table {_rides('MEMBERS')} drop column PLAN_CODE",),
            raw=RIDES_RAW,
            expected_class="missing_column",
            expected_outcome="escalated",
            failing_nodes=(f"model.{R}.stg_app__members",),
            dbt_command=_build("source:app.members+"),
        ),
        Scenario(
            name="rename_table",
            description="The fleet system renamed STATIONS to DOCKING_STATIONS.",
            tables=("STATIONS",),
            statements=(f"alter table {_rides('STATIONS')} rename to {_rides('DOCKING_STATIONS')}",),
            creates=("DOCKING_STATIONS",),
            raw=RIDES_RAW,
            expected_class="missing_relation",
            expected_outcome="repaired",
            failing_nodes=(f"model.{R}.stg_fleet__stations",),
            dbt_command=_build("source:fleet.stations+"),
        ),
        Scenario(
            name="drop_table",
            description="The fleet system stopped exporting DOCK_EVENTS; the table is gone.",
            tables=("DOCK_EVENTS",),
            statements=(f"drop table {_rides('DOCK_EVENTS')}",),
            raw=RIDES_RAW,
            expected_class="missing_relation",
            expected_outcome="escalated",
            failing_nodes=(f"model.{R}.stg_fleet__dock_events",),
            dbt_command=_build("source:fleet.dock_events+"),
        ),
        Scenario(
            name="duplicate_keys",
            description="The ingestion job re-delivered a batch: every 20th trip now appears twice, identical.",
            tables=("TRIPS",),
            statements=(f"insert into {TRIPS} select * from {TRIPS} where mod(TRIP_ID, 20) = 0",),
            raw=RIDES_RAW,
            expected_class="test_unique",
            expected_outcome="repaired",
            failing_nodes=(f"test.{R}.unique_stg_app__trips_trip_id",),
            dbt_command=_build("source:app.trips+"),
        ),
        Scenario(
            name="null_keys",
            description="A billing backfill lost the trip of some charges: every 40th TRIP_CHARGES.TRIP_ID is NULL.",
            tables=("TRIP_CHARGES",),
            statements=(f"update {TRIP_CHARGES} set TRIP_ID = null where mod(CHARGE_ID, 40) = 0",),
            raw=RIDES_RAW,
            expected_class="test_not_null",
            expected_outcome="escalated",
            failing_nodes=(f"test.{R}.not_null_stg_app__trip_charges_trip_id",),
            dbt_command=_build("source:app.trip_charges+"),
        ),
        Scenario(
            name="new_enum_value",
            description="The fleet added longtail bikes: some BIKES.BIKE_TYPE are now 'longtail'.",
            tables=("BIKES",),
            statements=(f"update {_rides('BIKES')} set BIKE_TYPE = 'longtail' where mod(BIKE_ID, 13) = 0",),
            raw=RIDES_RAW,
            expected_class="test_accepted_values",
            expected_outcome="repaired",
            failing_nodes=(f"test.{R}.accepted_values_stg_fleet__bikes_bike_type",),
            dbt_command=_build("source:fleet.bikes+"),
        ),
        Scenario(
            name="stale_source",
            description="The trips sync stalled: TRIPS was last synced three days ago.",
            tables=("TRIPS",),
            statements=(f"update {TRIPS} set _SYNCED_AT = dateadd(day, -3, _SYNCED_AT)",),
            raw=RIDES_RAW,
            expected_class="source_freshness",
            expected_outcome="escalated",
            failing_nodes=(f"source.{R}.app.trips",),
            dbt_command=_freshness("source:app.trips"),
        ),
        Scenario(
            name="add_column",
            description="TRIPS gained a PROMO_CODE column, filled for some trips.",
            tables=("TRIPS",),
            statements=(
                f"alter table {TRIPS} add column PROMO_CODE varchar",
                f"update {TRIPS} set PROMO_CODE = 'SPRING25' where mod(TRIP_ID, 9) = 0",
            ),
            raw=RIDES_RAW,
            expected_outcome="no_incident",
            dbt_command=_build("source:app.trips+"),
        ),
    )
}


def raw_fingerprint(conn: Any, schema: str | None = None, raw: RawLayout = SHOP_RAW) -> str:
    """A hash of every table in ``schema`` (default: ``raw``'s raw schema): its columns and its sorted rows.

    Columns count with name, type, size, nullability and position.
    """
    schema = schema or raw.schema
    digest = hashlib.sha256()
    cursor = conn.cursor()
    columns = cursor.execute(
        "select table_name, column_name, data_type, numeric_precision, numeric_scale, "
        "character_maximum_length, is_nullable, ordinal_position "
        f"from {raw.database}.information_schema.columns where table_schema = %s "
        "order by table_name, ordinal_position",
        (schema,),
    ).fetchall()
    width: dict[str, int] = {}
    for row in columns:
        digest.update(repr(row).encode())
        width[row[0]] = width.get(row[0], 0) + 1
    for table in sorted(raw.existing_tables(conn, schema) | set(width)):
        order_by = ", ".join(str(position) for position in range(1, width.get(table, 0) + 1)) or "1"
        digest.update(f"table {table}".encode())
        for row in cursor.execute(
            f"select * from {raw.qualified(table, schema)} order by {order_by}"
        ).fetchall():
            digest.update(repr(row).encode())
    return digest.hexdigest()


def registry(project: str = "shop") -> Mapping[str, Scenario]:
    """The scenarios of a dev project by key (``shop`` or ``rides``); an unknown key names the known ones."""
    registries = {"shop": SCENARIOS, "rides": RIDES_SCENARIOS}
    if project not in registries:
        raise KeyError(f"no scenarios for project {project!r}; known projects: {', '.join(registries)}")
    return registries[project]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.scenarios", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["list", "apply", "reset"])
    parser.add_argument("name", nargs="?")
    parser.add_argument(
        "--project", choices=["shop", "rides"], default="shop", help="which dev project's raw data"
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    scenarios = registry(args.project)
    if args.command == "list":
        for scenario in scenarios.values():
            print(f"{scenario.name:<20} {scenario.expected_outcome:<12} {scenario.description}")
        return 0
    if args.name is None:
        parser.error(
            f"{args.command} needs a scenario name; see `python -m dev.scenarios list --project {args.project}`"
        )
    if args.name not in scenarios:
        parser.error(
            f"no scenario {args.name!r} in project {args.project}; choose one of {', '.join(sorted(scenarios))}"
        )
    scenario = scenarios[args.name]
    warehouse = Warehouse(args.host, args.port, Path(args.data_dir).resolve())
    with warehouse.connect(database=scenario.raw.database) as conn:
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
