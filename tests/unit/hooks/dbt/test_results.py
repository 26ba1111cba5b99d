"""run_results.json parsing and the validation result: redaction, JSON round trip, the stuck-loop signature."""

from __future__ import annotations

import json
from typing import Any

from airflow_selfheal.hooks.dbt import NodeStatus, ValidationResult, parse_run_results

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
PASSWORD = "s3cret-pw"


class TestResult:
    def test_run_results_are_parsed_redacted_and_cut(self) -> None:
        data = {
            "results": [
                {"unique_id": "model.shop.stg_orders", "status": "error", "execution_time": 0.5,
                 "message": f"\x1b[31mDatabase Error\x1b[0m: login with {PASSWORD} failed " + "x" * 5000},
                {"unique_id": "test.shop.not_null_x", "status": "pass", "execution_time": 0.1, "message": None},
            ]
        }  # fmt: skip
        error, passed = parse_run_results(data, extra_secrets=[PASSWORD])
        assert (error.resource_type, error.status, passed.resource_type) == ("model", "error", "test")
        assert error.message is not None
        assert error.message.startswith("Database Error: login with ***REDACTED*** failed")
        assert PASSWORD not in error.message
        assert len(error.message) <= 2000
        assert passed.message is None

    def _result(self, **fields: Any) -> ValidationResult:
        failure = NodeStatus("model.shop.stg_orders", "model", "error", f"column X not found in {CLONE}", 0.2)
        values: dict[str, Any] = {
            "success": False,
            "select": "stg_orders+",
            "target_database": CLONE,
            "attempt": "attempt-1",
            "nodes": (failure,),
            "failures": (failure,),
            "elapsed_seconds": 3.0,
            "logs_excerpt": "...",
            "files_hash": "abc",
            "source_rewrites": ({"file": "f.yml", "source": "raw", "from": "DEMO", "to": CLONE},),
        }
        values.update(fields)
        return ValidationResult(**values)

    def test_round_trips_through_json(self) -> None:
        result = self._result()
        assert ValidationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result

    def test_error_signature_ignores_the_clone_and_whitespace(self) -> None:
        first = self._result()
        other_clone = "DEMO__SELFHEAL_INC_0001__20260101T110000Z"
        failure = NodeStatus(
            "model.shop.stg_orders", "model", "error", f"column  X not found in {other_clone}", 0.9
        )
        second = self._result(target_database=other_clone, failures=(failure,), attempt="attempt-2")
        assert first.error_signature == second.error_signature
        fixed = self._result(failures=())
        assert fixed.error_signature != first.error_signature

    def test_is_current_needs_success_and_the_same_files(self) -> None:
        passed = self._result(success=True, failures=())
        assert passed.is_current("abc")
        assert not passed.is_current("def")
        assert not self._result().is_current("abc")
