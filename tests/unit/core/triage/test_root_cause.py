"""
Root causes: the drift event that explains a missing column, a missing relation or a type mismatch.

Type changes as root causes get their own cases: wording that names no column, widening noise, and the
failing node's lineage.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.core.drift import DriftEvent
from airflow_selfheal.core.triage import FailureClass, classify
from tests.unit.core.triage.samples import (
    FAKESNOW_CONVERSION,
    FAKESNOW_MISSING_TABLE,
    SF_MISSING_COLUMN,
    rename_event,
    type_change_event,
)


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


class TestDriftCorrelation:
    def test_rename_explains_missing_column(self) -> None:
        event = rename_event()
        triage = classify(SF_MISSING_COLUMN, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_rename"
        assert triage.root_cause.message == (
            "Upstream rename: RAW.ORDERS.CUSTOMER_EMAIL -> RAW.ORDERS.EMAIL_ADDRESS (confidence 0.90)."
        )
        assert triage.root_cause.evidence == event
        assert "EMAIL_ADDRESS" in triage.summary
        assert triage.summary.startswith("Column CUSTOMER_EMAIL referenced by stg_orders no longer exists")

    def test_match_is_case_insensitive_and_works_on_duckdb_wording(self) -> None:
        event = {**rename_event(), "column": "customer_email"}
        triage = classify(
            'Binder Error: Referenced column "CUSTOMER_EMAIL" not found in FROM clause!', drift_events=[event]
        )
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_rename"

    def test_removed_column_explains_missing_column(self) -> None:
        event = {"kind": "column_removed", "table": "RAW.ORDERS", "column": "CUSTOMER_EMAIL"}
        triage = classify(
            SF_MISSING_COLUMN,
            drift_events=[{"kind": "column_added", "table": "RAW.ORDERS", "column": "X"}, event],
        )
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_column_removed"
        assert triage.root_cause.message == "Upstream column removed: RAW.ORDERS.CUSTOMER_EMAIL."

    def test_higher_confidence_rename_wins(self) -> None:
        weak = rename_event(table="RAW.CUSTOMERS", confidence=0.55, new_column="EMAIL")
        strong = rename_event(table="RAW.ORDERS", confidence=0.9)
        triage = classify(SF_MISSING_COLUMN, drift_events=[weak, strong])
        assert triage.root_cause is not None
        assert triage.root_cause.evidence == strong

    def test_type_change_matched_by_the_column_in_the_error(self) -> None:
        amount = type_change_event("AMOUNT")
        triage = classify(FAKESNOW_CONVERSION, drift_events=[type_change_event("QUANTITY"), amount])
        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_type_change"
        assert triage.root_cause.evidence == amount
        assert triage.root_cause.message == "Upstream type change: RAW.ORDERS.AMOUNT NUMBER(10,2) -> VARCHAR."

    def test_only_type_change_is_used_when_the_error_names_no_column(self) -> None:
        event = type_change_event("AMOUNT")
        triage = classify("100038 (22018): Numeric value 'abc' is not recognized", drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.evidence == event

    def test_ambiguous_type_changes_give_no_root_cause(self) -> None:
        events = [type_change_event("AMOUNT"), type_change_event("QUANTITY")]
        triage = classify("100038 (22018): Numeric value 'abc' is not recognized", drift_events=events)
        assert triage.failure_class is FailureClass.TYPE_MISMATCH
        assert triage.root_cause is None

    def test_removed_table_explains_missing_relation(self) -> None:
        event = {"kind": "table_removed", "table": "DEMO.RAW.ORDERS_ARCHIVE"}
        triage = classify(FAKESNOW_MISSING_TABLE, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_table_removed"
        assert triage.root_cause.message == "Upstream table removed: DEMO.RAW.ORDERS_ARCHIVE."

    def test_renamed_table_explains_qualified_missing_relation(self) -> None:
        event = {
            "kind": "table_renamed",
            "table": "RAW.ORDERS",
            "new_table": "RAW.ORDERS_V2",
            "confidence": 0.85,
        }
        text = "002003 (42S02): SQL compilation error:\nObject 'DEMO.RAW.ORDERS' does not exist or not authorized."
        triage = classify(text, drift_events=[event])
        assert triage.root_cause is not None
        assert triage.root_cause.kind == "upstream_table_removed"
        assert "RAW.ORDERS_V2" in triage.root_cause.message
        assert "RAW.ORDERS_V2" in triage.summary

    def test_same_table_name_in_another_schema_does_not_match(self) -> None:
        event = {"kind": "table_removed", "table": "STAGING.ORDERS"}
        text = "002003 (42S02): SQL compilation error:\nObject 'DEMO.RAW.ORDERS' does not exist or not authorized."
        assert classify(text, drift_events=[event]).root_cause is None

    @pytest.mark.parametrize(
        ("text", "events"),
        [
            pytest.param(SF_MISSING_COLUMN, [rename_event() | {"column": "OTHER"}], id="other-column"),
            pytest.param(SF_MISSING_COLUMN, [], id="no-events"),
            pytest.param(
                "390114 (08001): Authentication token has expired.", [rename_event()], id="transient"
            ),
            pytest.param(
                SF_MISSING_COLUMN, ["junk", {"table": "RAW.ORDERS"}, {"kind": None}], id="malformed"
            ),
        ],
    )
    def test_no_matching_event_gives_no_root_cause(self, text: str, events: list[Any]) -> None:
        triage = classify(text, drift_events=events)
        assert triage.root_cause is None
        assert "Upstream" not in triage.summary
