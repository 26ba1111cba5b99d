"""The rename, cast, unused-column and dedup rules on models written in several styles.

Pure: a hand-written manifest slice of a bike-share project and model files in import-CTE, jaffle-shop, plain,
grouped and macro-call styles. Each case states the exact line the rule must write.
"""

from __future__ import annotations

import pytest
import sqlglot

from airflow_selfheal.core.fixes import Escalation, FixPlan, propose_fix
from airflow_selfheal.core.rules import RulesConfig

P = "rides"
SRC = f"source.{P}.raw.trips"
STG = f"model.{P}.stg_trips"
FCT = f"model.{P}.fct_rides"
UT = f"test.{P}.unique_stg_trips_trip_id.1"


def manifest() -> dict:
    return {
        "sources": {
            SRC: {
                "unique_id": SRC,
                "resource_type": "source",
                "source_name": "raw",
                "name": "trips",
                "identifier": "trips",
                "database": "RIDES",
                "schema": "RAW",
                "original_file_path": "models/staging/_sources.yml",
                "loaded_at_field": "_loaded_at",
            }
        },
        "nodes": {
            STG: {
                "unique_id": STG,
                "resource_type": "model",
                "name": "stg_trips",
                "language": "sql",
                "original_file_path": "models/staging/stg_trips.sql",
                "depends_on": {"nodes": [SRC]},
                "config": {},
            },
            FCT: {
                "unique_id": FCT,
                "resource_type": "model",
                "name": "fct_rides",
                "language": "sql",
                "original_file_path": "models/marts/fct_rides.sql",
                "depends_on": {"nodes": [STG]},
                "config": {},
            },
            UT: {
                "unique_id": UT,
                "resource_type": "test",
                "name": "unique_stg_trips_trip_id",
                "language": "sql",
                "original_file_path": "models/staging/_staging.yml",
                "attached_node": STG,
                "column_name": "trip_id",
                "test_metadata": {"name": "unique", "namespace": None, "kwargs": {"column_name": "trip_id"}},
                "depends_on": {"nodes": [STG]},
            },
        },
        "child_map": {SRC: [STG], STG: [FCT, UT], FCT: [], UT: []},
    }


SOURCES_YML = """version: 2
sources:
  - name: raw
    schema: raw
    loaded_at_field: _loaded_at
    tables:
      - name: trips
        columns:
          - name: trip_id
          - name: station_code
          - name: amount_cents
"""


def run(triage, sql, fct="select trip_id from {{ ref('stg_trips') }}", nodes=None):
    files = {
        "models/staging/stg_trips.sql": sql,
        "models/marts/fct_rides.sql": fct,
        "models/staging/_sources.yml": SOURCES_YML,
        "dbt_project.yml": "name: rides\n",
    }
    return propose_fix(
        triage=triage,
        incident={
            "incident_id": "inc-1",
            "nodes": nodes or [{"unique_id": STG, "resource_type": "model", "name": "stg_trips"}],
        },
        project_files=files,
        manifest=manifest(),
        rules=RulesConfig(allowed_paths=("**",)),
    )


def rc(rkind, fc, **ev):
    return {
        "failure_class": fc,
        "action": "repair",
        "summary": "s",
        "identifiers": [],
        "root_cause": {"kind": rkind, "message": "m", "evidence": ev},
    }


RENAME = rc(
    "upstream_rename",
    "missing_column",
    kind="column_renamed",
    table="RAW.TRIPS",
    column="STATION_CODE",
    new_column="STATION_ID",
    old_type="VARCHAR",
    new_type="VARCHAR",
    confidence=0.8,
)
CAST = rc(
    "upstream_type_change",
    "type_mismatch",
    kind="column_type_changed",
    table="RAW.TRIPS",
    column="AMOUNT_CENTS",
    old_type="NUMBER(10,0)",
    new_type="TEXT",
)
DROP = rc(
    "upstream_column_removed", "missing_column", kind="column_removed", table="RAW.TRIPS", column="NOTE"
)
DEDUP = {
    "failure_class": "test_unique",
    "action": "repair",
    "summary": "s",
    "identifiers": ["unique_stg_trips_trip_id"],
    "root_cause": None,
}

IMPORT_CTE = """with source as (
    select * from {{ source('raw', 'trips') }}
),
renamed as (
    select
        trip_id,
        station_code as station,
        amount_cents / 100 as amount,
        note,
        _loaded_at as loaded_at
    from source
)
select * from renamed
"""
JAFFLE = """with

source as (

    select * from {{ source('raw', 'trips') }}

),

renamed as (

    select

        ----------  ids
        trip_id,
        station_code as station_id,

        ---------- numerics
        {{ cents_to_dollars('amount_cents') }} as amount,
        note,

        ---------- timestamps
        _loaded_at as loaded_at

    from source

)

select * from renamed
"""
PLAIN = """select
    trip_id,
    station_code,
    amount_cents / 100 as amount,
    note
from {{ source('raw', 'trips') }}
"""
GROUPED = """select station_code, sum(amount_cents) as total_cents, max(note) as note
from {{ source('raw', 'trips') }}
where station_code is not null and amount_cents > 0
group by station_code
"""
MACRO = """select trip_id, {{ cents_to_dollars('amount_cents') }} as amount, station_code, note
from {{ source('raw', 'trips') }} as t
"""

STYLES = {"import_cte": IMPORT_CTE, "jaffle": JAFFLE, "plain": PLAIN, "grouped": GROUPED, "macro": MACRO}
STG_PATH = "models/staging/stg_trips.sql"
DEDUP_NODES = [{"unique_id": UT, "resource_type": "test", "name": "unique_stg_trips_trip_id"}]
JINJA_EXPR = r"\{\{.*?\}\}"


def _rewritten(triage, style, nodes=None) -> str:
    outcome = run(triage, STYLES[style], nodes=nodes)
    assert isinstance(outcome, FixPlan), outcome
    text = outcome.changes[STG_PATH]
    import re

    assert isinstance(sqlglot.parse_one(re.sub(JINJA_EXPR, "x", text), read="snowflake"), sqlglot.exp.Query)
    return text


@pytest.mark.parametrize(
    ("style", "expected", "gone"),
    [
        pytest.param("import_cte", "station_id as station,", "station_code", id="import-cte-aliased"),
        pytest.param("jaffle", "station_id as station_id,", "station_code", id="jaffle-aliased"),
        pytest.param(
            "plain", "    station_id as station_code,\n", "    station_code,\n", id="plain-keeps-output"
        ),
        pytest.param("grouped", "group by station_id", "where station_code", id="where-and-group-by"),
        pytest.param("macro", "station_id as station_code, note", None, id="beside-a-macro"),
    ],
)
def test_rename(style: str, expected: str, gone: str | None) -> None:
    text = _rewritten(RENAME, style)
    assert expected in text
    if gone:
        assert gone not in text


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        pytest.param(
            "import_cte", "try_cast(amount_cents as number(10, 0)) / 100 as amount,", id="import-cte"
        ),
        pytest.param(
            "jaffle",
            "{{ cents_to_dollars('try_cast(amount_cents as number(10, 0))') }} as amount,",
            id="jaffle-macro",
        ),
        pytest.param("plain", "try_cast(amount_cents as number(10, 0)) / 100 as amount,", id="plain"),
        pytest.param("grouped", "and try_cast(amount_cents as number(10, 0)) > 0", id="where-clause"),
        pytest.param(
            "macro",
            "{{ cents_to_dollars('try_cast(amount_cents as number(10, 0))') }} as amount",
            id="macro-arg",
        ),
    ],
)
def test_cast(style: str, expected: str) -> None:
    assert expected in _rewritten(CAST, style)


def test_cast_in_a_group_by_style_covers_every_reference() -> None:
    text = _rewritten(CAST, "grouped")
    assert text.count("try_cast(amount_cents as number(10, 0))") == 2


@pytest.mark.parametrize("style", ["import_cte", "jaffle", "plain", "macro"])
def test_drop_unused_column(style: str) -> None:
    text = _rewritten(DROP, style)
    assert "note" not in text
    assert "trip_id" in text


def test_drop_escalates_when_the_column_feeds_logic() -> None:
    outcome = run(DROP, GROUPED)
    assert isinstance(outcome, Escalation)
    assert "uses NOTE in its logic" in outcome.reason


@pytest.mark.parametrize(
    ("style", "order_by"),
    [
        pytest.param("import_cte", "loaded_at desc", id="import-cte-renamed-loaded-at"),
        pytest.param("jaffle", "loaded_at desc", id="jaffle"),
        pytest.param("plain", "_loaded_at desc", id="plain"),
        pytest.param("macro", "_loaded_at desc", id="macro"),
    ],
)
def test_dedup(style: str, order_by: str) -> None:
    text = _rewritten(DEDUP, style, nodes=DEDUP_NODES)
    assert text.rstrip().endswith(f"qualify row_number() over (partition by trip_id order by {order_by}) = 1")


def test_rename_inside_a_macro_argument_follows_the_column() -> None:
    renamed = rc(
        "upstream_rename",
        "missing_column",
        kind="column_renamed",
        table="RAW.TRIPS",
        column="AMOUNT_CENTS",
        new_column="FARE_CENTS",
        old_type="NUMBER(10,0)",
        new_type="NUMBER(10,0)",
        confidence=0.8,
    )
    text = _rewritten(renamed, "jaffle")
    assert "{{ cents_to_dollars('fare_cents') }} as amount," in text


def test_a_macro_over_a_list_or_a_nested_call_still_escalates() -> None:
    sql = "select {{ dbt_utils.star(source('raw', 'trips'), except=['amount_cents']) }} from {{ source('raw', 'trips') }}"
    outcome = run(CAST, sql)
    assert isinstance(outcome, Escalation)
    assert "inside Jinja" in outcome.reason


@pytest.mark.parametrize(
    "new_column",
    [
        pytest.param("x') ~ run_query('drop table raw.trips') ~ ('", id="quote-ends-the-string"),
        pytest.param('x" ~ run_query("drop table raw.trips") ~ "', id="double-quote"),
        pytest.param("x\\' ~ run_query(1) ~ \\'", id="backslash"),
    ],
)
def test_a_new_name_that_would_leave_the_macros_string_escalates(new_column: str) -> None:
    # Inside {{ cents_to_dollars('...') }} no delimiter is needed to run code: a quote ends the string.
    renamed = rc(
        "upstream_rename",
        "missing_column",
        kind="column_renamed",
        table="RAW.TRIPS",
        column="AMOUNT_CENTS",
        new_column=new_column,
        old_type="NUMBER(10,0)",
        new_type="NUMBER(10,0)",
    )
    # The sources file does not declare the column, so only the model would change: the macro is the way in.
    outcome = propose_fix(
        triage=renamed,
        incident={
            "incident_id": "inc-1",
            "nodes": [{"unique_id": STG, "resource_type": "model", "name": "stg_trips"}],
        },
        project_files={
            STG_PATH: MACRO,
            "models/staging/_sources.yml": SOURCES_YML.replace("          - name: amount_cents\n", ""),
            "dbt_project.yml": "name: rides\n",
        },
        manifest=manifest(),
        rules=RulesConfig(allowed_paths=("**",)),
    )
    assert isinstance(outcome, Escalation)
    assert outcome.reason.startswith(f"{STG_PATH} passes the column to a macro by name, and ")
    assert outcome.reason.endswith("cannot be written inside a Jinja string safely; a person must change it")
