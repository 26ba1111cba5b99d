"""Tables and snapshots shared by the drift tests."""

from __future__ import annotations

from airflow_selfheal.core.drift import ColumnSchema, DriftReport, SchemaSnapshot, TableSchema

CAPTURED_AT = "2025-01-01T00:00:00Z"


def make_table(
    key: str, *columns: tuple[str, str] | tuple[str, str, bool], database: str = "PROD"
) -> TableSchema:
    schema, name = key.split(".")
    built = []
    for position, column in enumerate(columns, start=1):
        nullable = column[2] if len(column) == 3 else True
        built.append(ColumnSchema(name=column[0], data_type=column[1], nullable=nullable, position=position))
    return TableSchema(database=database, schema=schema, name=name, columns=tuple(built))


def make_snapshot(*tables: TableSchema, captured_at: str = CAPTURED_AT) -> SchemaSnapshot:
    return SchemaSnapshot(tables=tables, captured_at=captured_at, source="information_schema")


ORDERS = make_table(
    "RAW.ORDERS",
    ("ID", "NUMBER(38,0)", False),
    ("AMOUNT", "NUMBER(10,2)"),
    ("CUSTOMER_EMAIL", "VARCHAR"),
    ("STATUS", "VARCHAR"),
)
CUSTOMERS = make_table("RAW.CUSTOMERS", ("ID", "NUMBER(38,0)"), ("NAME", "VARCHAR"), ("EMAIL", "VARCHAR"))


def event_messages(report: DriftReport) -> list[str]:
    return [event.message for event in report.events]


TRIPS = make_table(
    "RAW.TRIPS",
    ("TRIP_ID", "VARCHAR(16)"),
    ("STATION_CODE", "TEXT(8)"),
    ("AMOUNT_CENTS", "NUMBER(10,0)"),
    ("RIDER_NOTE", "VARCHAR(16777216)"),
    ("STARTED_AT", "TIMESTAMP_NTZ"),
)

TRIPS_COLUMNS = [(column.name, column.data_type) for column in TRIPS.columns]
