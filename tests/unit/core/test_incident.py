from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_selfheal.core.incident import (
    RUN_RESULT_KEYS,
    DbtNodeRef,
    Incident,
    build_incident,
    compute_fingerprint,
    incident_id_for,
    normalize_error_signature,
)
from airflow_selfheal.core.redaction import REDACTED

STG_ORDERS = DbtNodeRef(
    unique_id="model.demo.stg_orders",
    resource_type="model",
    name="stg_orders",
    original_file_path="models/staging/stg_orders.sql",
    upstream=("source.demo.raw.orders",),
    downstream=("model.demo.orders_daily",),
)
STG_CUSTOMERS = DbtNodeRef(
    "model.demo.stg_customers", "model", "stg_customers", "models/staging/stg_customers.sql"
)

SNOWFLAKE_LOG = """\x1b[0m{time}  Running with dbt=1.11.2
{time}  1 of 3 START sql view model demo.stg_orders ..................... [RUN]
{time}  1 of 3 ERROR creating sql view model demo.stg_orders ............ [\x1b[31mERROR\x1b[0m in {duration}s]
{time}
{time}  Completed with 1 error, 0 partial successes, and 0 warnings:
{time}
{time}    Database Error in model stg_orders (models/staging/stg_orders.sql)
  000904 (42000): SQL compilation error: error line 3 at position 4
  invalid identifier '{column}'
  sfqid: {query_id} at {stamp} pid={pid} <object at 0x{address}>
  compiled code at {tmp}/target/run/demo/models/staging/stg_orders.sql
{time}
{time}  Done. PASS=2 WARN=0 ERROR=1 SKIP=0 TOTAL=3
"""


def _log(**overrides: Any) -> str:
    values = {
        "time": "10:11:12",
        "duration": "1.21",
        "column": "CUSTOMER_EMAIL",
        "query_id": "01b2c3d4-0000-1a2b-0000-0001a2b3c4d5",
        "stamp": "2024-05-01 10:11:12.123",
        "pid": "4242",
        "address": "7f3a2b1c0d9e",
        "tmp": "/tmp/tmpab12cd",
    }
    values.update(overrides)
    return SNOWFLAKE_LOG.format(**values)


def _incident(**overrides: Any) -> Incident:
    arguments: dict[str, Any] = {
        "pipeline": "orders_daily",
        "run_id": "scheduled__2024-05-01T00:00:00+00:00",
        "task_id": "dbt.stg_orders_run",
        "try_number": 1,
        "nodes": [STG_ORDERS],
        "error": _log(),
        "failed_at": datetime(2024, 5, 1, 10, 11, 12, tzinfo=timezone.utc),
    }
    arguments.update(overrides)
    return build_incident(**arguments)


class TestNormalizeErrorSignature:
    def test_keeps_the_error_lines_and_identifiers(self) -> None:
        signature = normalize_error_signature(_log())
        assert signature.startswith("database error in model stg_orders (models/staging/stg_orders.sql)")
        assert "000904 (42000): sql compilation error: error line 3 at position 4" in signature
        assert "invalid identifier 'customer_email'" in signature
        assert "running with dbt" not in signature
        assert "done. pass=2" not in signature

    def test_strips_volatile_parts(self) -> None:
        signature = normalize_error_signature(_log())
        assert "sfqid=<id> at <ts> pid=<n> <object at <addr>>" in signature
        assert "<tmp>/target/run/demo/models/staging/stg_orders.sql" in signature
        assert "\x1b" not in signature
        assert "01b2c3d4" not in signature

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param(
                "Got 3 results, configured to fail if != 0",
                "Got 17 results, configured to fail if != 0",
                id="row-count",
            ),
            pytest.param(
                "query 01b2c3d4-0000-1a2b-0000-0001a2b3c4d5 failed",
                "query 01ff0000-0603-1c1e-0000-0005a4b2c3e1 failed",
                id="query-id",
            ),
            pytest.param(
                "Error at 2024-05-01T10:11:12Z", "Error at 2025-12-31T23:59:59.999+00:00", id="iso-time"
            ),
            pytest.param(
                "Error at 2024-05-01 10:11:12.123", "Error at 2024-06-02 01:02:03.456", id="sql-time"
            ),
            pytest.param("ERROR in 3.21s", "ERROR in 11.9s", id="duration"),
            pytest.param("error in /tmp/tmpab12cd/x.sql", "error in /tmp/tmpzz99qq/x.sql", id="tmp-dir"),
            pytest.param("error in <Foo at 0x7f3a2b1c>", "error in <Foo at 0x7f00ffee>", id="address"),
            pytest.param("worker pid=123 error", "worker pid=98765 error", id="pid"),
            pytest.param(
                "\x1b[31mDatabase Error\x1b[0m  in   model x",
                "Database Error in model x",
                id="ansi-and-spaces",
            ),
            pytest.param(
                "Error: run_id=manual__2024-05-01T00:00:00+00:00 try_number=1",
                "Error: run_id=scheduled__2024-05-02T00:00:00+00:00 try_number=3",
                id="run-id-and-try",
            ),
        ],
    )
    def test_volatile_differences_match(self, first: str, second: str) -> None:
        assert normalize_error_signature(first) == normalize_error_signature(second)

    def test_line_and_position_are_kept(self) -> None:
        first = normalize_error_signature("000904 (42000): SQL compilation error: error line 3 at position 4")
        second = normalize_error_signature(
            "000904 (42000): SQL compilation error: error line 9 at position 4"
        )
        assert first != second

    def test_repr_newlines_are_lines(self) -> None:
        error = (
            "AirflowException: ('dbt command failed', ' Database Error in model stg_orders (models/x.sql)\\n"
            '  002043 (02000): Binder Error: Referenced column "CUSTOMER_EMAIL" not found\')'
        )
        signature = normalize_error_signature(error)
        assert 'referenced column "customer_email" not found' in signature
        assert "\\n" not in signature

    def test_whole_and_lowercase(self) -> None:
        signature = normalize_error_signature("Compilation Error " + "X" * 5000)
        assert signature == "compilation error " + "x" * 5000

    def test_reads_past_a_blank_line(self) -> None:
        signature = normalize_error_signature("Failure in test t\n  Got 1 result\n\nthe detail")
        assert signature == "failure in test t got n results the detail"

    def test_without_error_words_takes_the_first_line(self) -> None:
        assert normalize_error_signature("\n\n  Something Odd\nnext") == "something odd next"

    def test_empty(self) -> None:
        assert normalize_error_signature("") == ""


class TestComputeFingerprint:
    def test_is_64_hex_and_ignores_node_order_and_duplicates(self) -> None:
        first = compute_fingerprint("p", ["model.a", "model.b"], "sig")
        second = compute_fingerprint("p", ["model.b", "model.a", "model.a"], "sig")
        assert first == second
        assert len(first) == 64
        assert int(first, 16) >= 0

    @pytest.mark.parametrize(
        "other",
        [
            pytest.param(("q", ["model.a"], "sig"), id="pipeline"),
            pytest.param(("p", ["model.b"], "sig"), id="node"),
            pytest.param(("p", ["model.a"], "sig2"), id="signature"),
        ],
    )
    def test_each_part_matters(self, other: tuple[str, list[str], str]) -> None:
        assert compute_fingerprint("p", ["model.a"], "sig") != compute_fingerprint(*other)


class TestBuildIncident:
    def test_same_failure_at_another_time_is_the_same_incident(self) -> None:
        first = _incident()
        again = _incident(
            run_id="manual__2024-05-02T08:00:00+00:00",
            task_id="dbt_retry.stg_orders_run",
            try_number=3,
            failed_at=datetime(2024, 5, 2, 8, 30, tzinfo=timezone.utc),
            error=_log(
                time="23:59:01",
                duration="13.70",
                query_id="01ffeedd-0603-1c1e-0000-0005a4b2c3e1",
                stamp="2024-05-02 08:30:00.001",
                pid="977",
                address="55aa33bb",
                tmp="/tmp/tmpzz99qq",
            ),
        )
        assert first.fingerprint == again.fingerprint
        assert first.incident_id == again.incident_id == incident_id_for(first.fingerprint)
        assert first.run_id != again.run_id

    def test_different_node_is_a_different_incident(self) -> None:
        assert _incident().fingerprint != _incident(nodes=[STG_CUSTOMERS]).fingerprint

    def test_different_column_is_a_different_incident(self) -> None:
        assert _incident().fingerprint != _incident(error=_log(column="CUSTOMER_PHONE")).fingerprint

    def test_different_pipeline_is_a_different_incident(self) -> None:
        assert _incident().fingerprint != _incident(pipeline="orders_hourly").fingerprint

    def test_incident_id_is_derived_from_fingerprint(self) -> None:
        incident = _incident()
        assert incident.incident_id == "inc-" + incident.fingerprint[:16]

    def test_secrets_never_reach_the_record(self) -> None:
        incident = _incident(
            error=_log() + "connecting to snowflake://etl:Hunter22@acct with password=pw1 and hunter-key",
            compiled_sql="select * from raw.orders where api_token = 'zz-known-9' -- token=t0k",
            run_results_excerpt=[
                {
                    "unique_id": "model.demo.stg_orders",
                    "status": "error",
                    "message": "auth with zz-known-9 failed",
                    "failures": None,
                    "execution_time": 1.25,
                    "adapter_response": {"query_id": "01b2", "password": "pw1"},
                    "compiled_code": "select 'zz-known-9'",
                    "timing": [{"name": "execute"}],
                }
            ],
            secrets=["zz-known-9", "hunter-key"],
        )
        text = json.dumps(incident.to_dict())
        for secret in ("Hunter22", "pw1", "zz-known-9", "hunter-key", "t0k"):
            assert secret not in text
        assert REDACTED in incident.error
        assert REDACTED in (incident.compiled_sql or "")
        assert set(incident.run_results_excerpt[0]) == set(RUN_RESULT_KEYS)
        assert incident.run_results_excerpt[0]["adapter_response"] == {
            "query_id": "01b2",
            "password": REDACTED,
        }

    def test_huge_error_is_truncated_with_marker(self) -> None:
        error = "Database Error in model stg_orders\n" + "progress line\n" * 100_000 + "the final cause"
        incident = _incident(error=error, compiled_sql="select 1 " * 10_000, error_limit=5_000)
        assert len(incident.error) <= 5_000
        assert incident.error.startswith("Database Error in model stg_orders")
        assert incident.error.endswith("the final cause")
        assert "characters]…" in incident.error
        assert len(incident.compiled_sql or "") <= 5_000
        assert normalize_error_signature(incident.error) == incident.error_signature

    def test_failed_at_is_iso_utc(self) -> None:
        local = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
        assert _incident(failed_at=local).failed_at == "2024-05-01T10:00:00+00:00"
        assert _incident(failed_at=datetime(2024, 5, 1, 10, 0)).failed_at == "2024-05-01T10:00:00+00:00"

    def test_missing_notes_and_defaults(self) -> None:
        incident = _incident(
            missing=["run_results.json missing", "dbt_node_config absent (not a cosmos task)"]
        )
        assert incident.missing == ("run_results.json missing", "dbt_node_config absent (not a cosmos task)")
        assert incident.map_index == -1
        assert incident.environment == "dev"
        assert incident.triage is None

    def test_empty_pipeline_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="pipeline"):
            _incident(pipeline="")


class TestIncidentSerialisation:
    def _full(self) -> Incident:
        return _incident(
            compiled_sql="select 1",
            run_results_excerpt=[
                {
                    "unique_id": "model.demo.stg_orders",
                    "status": "error",
                    "message": "boom",
                    "failures": None,
                    "execution_time": 0.125,
                    "adapter_response": {"rows": (1, 2)},
                }
            ],
            git_sha="a1b2c3d",
            environment="prod",
            missing=["run_results.json missing"],
        ).with_triage({"failure_class": "missing_column", "identifiers": ("CUSTOMER_EMAIL",)})

    def test_json_round_trip_is_exact(self) -> None:
        incident = self._full()
        restored = Incident.from_dict(json.loads(json.dumps(incident.to_dict())))
        assert restored == incident
        assert restored.to_dict() == incident.to_dict()
        assert restored.nodes == (STG_ORDERS,)

    def test_with_triage_returns_a_copy(self) -> None:
        incident = _incident()
        triaged = incident.with_triage({"failure_class": "missing_column"})
        assert incident.triage is None
        assert triaged.triage == {"failure_class": "missing_column"}
        assert triaged.fingerprint == incident.fingerprint

    def test_to_dict_is_a_copy(self) -> None:
        incident = self._full()
        data = incident.to_dict()
        data["run_results_excerpt"][0]["message"] = "changed"
        data["triage"]["failure_class"] = "changed"
        assert incident.run_results_excerpt[0]["message"] == "boom"
        assert incident.triage is not None
        assert incident.triage["failure_class"] == "missing_column"

    def test_hashable(self) -> None:
        incident = self._full()
        assert {incident, Incident.from_dict(incident.to_dict())} == {incident}

    def test_node_round_trip(self) -> None:
        assert DbtNodeRef.from_dict(json.loads(json.dumps(STG_ORDERS.to_dict()))) == STG_ORDERS

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            pytest.param(lambda d: d.pop("pipeline"), "pipeline", id="missing-pipeline"),
            pytest.param(lambda d: d.pop("error"), "error", id="missing-error"),
            pytest.param(lambda d: d.update(fingerprint="xyz"), "fingerprint", id="bad-fingerprint"),
            pytest.param(lambda d: d.update(incident_id="inc-0000"), "incident_id", id="foreign-incident-id"),
            pytest.param(lambda d: d.update(map_index="0"), "map_index", id="map-index-string"),
            pytest.param(lambda d: d.update(try_number=True), "try_number", id="try-number-bool"),
            pytest.param(lambda d: d.update(run_id=7), "run_id", id="run-id-int"),
            pytest.param(lambda d: d.update(failed_at="yesterday"), "failed_at", id="failed-at-garbage"),
            pytest.param(
                lambda d: d.update(failed_at="2024-05-01T12:00:00+02:00"), "failed_at", id="failed-at-not-utc"
            ),
            pytest.param(lambda d: d.update(nodes="model.x"), "nodes", id="nodes-string"),
            pytest.param(lambda d: d["nodes"][0].pop("unique_id"), "unique_id", id="node-missing-id"),
            pytest.param(
                lambda d: d.update(run_results_excerpt=[1]), "run_results_excerpt", id="excerpt-not-objects"
            ),
            pytest.param(lambda d: d.update(triage=["x"]), "triage", id="triage-list"),
            pytest.param(lambda d: d.update(missing=[1]), "missing", id="missing-not-strings"),
        ],
    )
    def test_from_dict_names_the_bad_field(self, change: Any, field: str) -> None:
        data = self._full().to_dict()
        change(data)
        with pytest.raises(ValueError, match=field):
            Incident.from_dict(data)

    @pytest.mark.parametrize("garbage", [pytest.param([], id="list"), pytest.param("x", id="string")])
    def test_from_dict_rejects_non_objects(self, garbage: Any) -> None:
        with pytest.raises(ValueError, match="incident must be a JSON object"):
            Incident.from_dict(garbage)

    def test_triage_and_missing_may_be_absent(self) -> None:
        data = _incident().to_dict()
        del data["triage"], data["missing"]
        restored = Incident.from_dict(data)
        assert restored.triage is None
        assert restored.missing == ()

    def test_constructor_checks_incident_id(self) -> None:
        incident = _incident()
        with pytest.raises(ValueError, match="incident_id"):
            Incident(**{**incident.__dict__, "incident_id": "inc-wrong"})
