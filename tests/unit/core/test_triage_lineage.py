"""Type changes as root causes: wording that names no column, widening noise, and the failing node's lineage."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.core.drift import DriftEvent
from airflow_selfheal.core.triage import FailureClass, classify, lineage_relations


def _type_change(table: str, column: str, old: str, new: str) -> dict[str, Any]:
    return DriftEvent(
        kind="column_type_changed", table=table, column=column, old_type=old, new_type=new
    ).to_dict()


# What a restart of the stand-in reported around the one real change: declared lengths lost everywhere.
NOISE = [_type_change("RAW.TRIPS", f"COL_{index}", f"TEXT({8 * (index + 1)})", "TEXT") for index in range(20)]
REAL = _type_change("RAW.TRIPS", "AMOUNT_CENTS", "NUMBER(10,0)", "TEXT")
UNRELATED = _type_change("RAW.STATIONS", "CAPACITY", "NUMBER(38,0)", "TEXT")

ERRORS = [
    pytest.param(
        "002043 (02000): Binder Error: No function matches the given name and argument types "
        "'/(VARCHAR, INTEGER_LITERAL)'. You might need to add explicit type casts.",
        id="duckdb-division",
    ),
    pytest.param(
        "Binder Error: No function matches the given name and argument types '*(VARCHAR, INTEGER_LITERAL)'",
        id="duckdb-multiplication",
    ),
    pytest.param("Conversion Error: Could not convert string 'abc' to INT32", id="duckdb-conversion"),
    pytest.param(
        "Invalid Input Error: Could not convert string 'n/a' to INT64", id="duckdb-invalid-input-conversion"
    ),
    pytest.param("100038 (22018): Numeric value 'abc' is not recognized", id="snowflake-numeric-value"),
    pytest.param(
        "Binder Error: Cannot mix values of type VARCHAR and INTEGER_LITERAL in COALESCE", id="duckdb-mix"
    ),
    pytest.param(
        "002016 (22000): SQL compilation error: Function SUM does not support VARCHAR(16777216) argument type",
        id="snowflake-argument-type",
    ),
]


class TestTypeChangeRootCause:
    @pytest.mark.parametrize("error", ERRORS)
    def test_real_change_among_widening_noise(self, error: str) -> None:
        triage = classify(f"Database Error in model stg_trips\n{error}", drift_events=[*NOISE, REAL])

        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_type_change"
        assert triage.root_cause.evidence["column"] == "AMOUNT_CENTS"

    @pytest.mark.parametrize("error", ERRORS)
    def test_lineage_picks_the_change_the_node_reads(self, error: str) -> None:
        triage = classify(
            error, drift_events=[UNRELATED, *NOISE, REAL], lineage=["RAW.TRIPS", "STAGING.STG_X"]
        )

        assert triage.root_cause is not None
        assert (triage.root_cause.evidence["table"], triage.root_cause.evidence["column"]) == (
            "RAW.TRIPS",
            "AMOUNT_CENTS",
        )

    def test_without_lineage_two_changes_are_ambiguous(self) -> None:
        triage = classify("Numeric value 'abc' is not recognized", drift_events=[UNRELATED, REAL])

        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is None

    def test_a_change_off_the_lineage_is_not_the_cause(self) -> None:
        triage = classify(
            "Numeric value 'abc' is not recognized", drift_events=[UNRELATED], lineage=["RAW.TRIPS"]
        )

        assert triage.root_cause is None

    def test_column_quoted_in_the_failing_sql_line_decides(self) -> None:
        other = _type_change("RAW.TRIPS", "DURATION_S", "NUMBER(10,0)", "TEXT")
        error = (
            "Binder Error: No function matches the given name and argument types '/(VARCHAR, INTEGER_LITERAL)'\n"
            "LINE 1: ...select trip_id, (amount_cents / 100)::numeric(16, 2) as amount from DEMO.RAW.TRIPS"
        )

        triage = classify(error, drift_events=[other, REAL], lineage=["RAW.TRIPS"])

        assert triage.root_cause is not None
        assert triage.root_cause.evidence["column"] == "AMOUNT_CENTS"

    def test_named_column_wins_over_lineage_order(self) -> None:
        other = _type_change("RAW.TRIPS", "DURATION_S", "NUMBER(10,0)", "TEXT")
        error = "Conversion Error: Could not convert string 'x' to INT64 when casting from source column DURATION_S"

        triage = classify(error, drift_events=[REAL, other], lineage=["RAW.TRIPS"])

        assert triage.root_cause is not None
        assert triage.root_cause.evidence["column"] == "DURATION_S"

    def test_widening_alone_is_never_a_cause(self) -> None:
        old_record = {
            "kind": "column_type_changed",
            "table": "RAW.TRIPS",
            "column": "AMOUNT_CENTS",
            "old_type": "NUMBER(10,0)",
            "new_type": "NUMBER(38,0)",
        }

        triage = classify("Numeric value 'abc' is not recognized", drift_events=[old_record, *NOISE])

        assert triage.root_cause is None

    def test_rename_prefers_the_lineage(self) -> None:
        here = DriftEvent(
            kind="column_renamed", table="RAW.TRIPS", column="CODE", new_column="STATION_CODE", confidence=0.7
        ).to_dict()
        elsewhere = DriftEvent(
            kind="column_renamed", table="RAW.STATIONS", column="CODE", new_column="ID", confidence=0.9
        ).to_dict()

        triage = classify(
            'Binder Error: Referenced column "CODE" not found in FROM clause!',
            drift_events=[elsewhere, here],
            lineage=["RAW.TRIPS"],
        )

        assert triage.root_cause is not None
        assert triage.root_cause.evidence["table"] == "RAW.TRIPS"


MANIFEST = {
    "nodes": {
        "model.rides.stg_trips": {
            "resource_type": "model",
            "schema": "staging",
            "name": "stg_trips",
            "alias": "stg_trips",
        },
        "model.rides.fct_rides": {
            "resource_type": "model",
            "schema": "marts",
            "name": "fct_rides",
            "alias": "rides",
        },
        "test.rides.unique_fct_rides_trip_id.abc": {"resource_type": "test", "schema": "tests", "name": "u"},
        "seed.rides.zones": {"resource_type": "seed", "schema": "seeds", "name": "zones", "alias": "zones"},
    },
    "sources": {
        "source.rides.raw.trips": {
            "resource_type": "source",
            "schema": "raw",
            "name": "trips",
            "identifier": "TRIP_LOG",
        },
        "source.rides.raw.stations": {"resource_type": "source", "schema": "raw", "name": "stations"},
    },
    "parent_map": {
        "test.rides.unique_fct_rides_trip_id.abc": ["model.rides.fct_rides"],
        "model.rides.fct_rides": ["model.rides.stg_trips", "seed.rides.zones"],
        "model.rides.stg_trips": ["source.rides.raw.trips"],
        "source.rides.raw.trips": [],
        "source.rides.raw.stations": [],
        "seed.rides.zones": [],
    },
}


class TestLineageRelations:
    def test_a_test_reads_what_its_model_reads_transitively(self) -> None:
        relations = lineage_relations(MANIFEST, ["test.rides.unique_fct_rides_trip_id.abc"])

        assert relations == ["MARTS.RIDES", "RAW.TRIP_LOG", "SEEDS.ZONES", "STAGING.STG_TRIPS"]

    def test_a_model_reads_its_source_by_identifier(self) -> None:
        assert lineage_relations(MANIFEST, ["model.rides.stg_trips"]) == ["RAW.TRIP_LOG"]

    def test_without_manifest_nothing_is_known(self) -> None:
        assert lineage_relations(None, ["model.rides.stg_trips"]) == []

    def test_depends_on_is_used_without_a_parent_map(self) -> None:
        manifest = {
            "nodes": {"model.p.m": {"resource_type": "model", "depends_on": {"nodes": ["source.p.raw.t"]}}},
            "sources": {"source.p.raw.t": {"resource_type": "source", "schema": "RAW", "name": "t"}},
        }

        assert lineage_relations(manifest, ["model.p.m"]) == ["RAW.T"]
