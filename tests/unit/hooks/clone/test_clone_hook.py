"""SnowflakeCloneHook without a warehouse: the package's names, the result's round trip, refusals before connecting."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

import airflow_selfheal.hooks.snowflake_clone as package
from airflow_selfheal.hooks.snowflake_clone import CloneResult, SnowflakeCloneHook
from airflow_selfheal.hooks.snowflake_clone.hook import SnowflakeCloneHook as HookInItsModule

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"


def result(**fields: Any) -> CloneResult:
    values: dict[str, Any] = {
        "clone_database": CLONE,
        "source_database": "DEMO",
        "incident_id": "inc-0001",
        "strategy": "tables",
        "tables": ("RAW.ORDERS",),
        "views": ("ANALYTICS.STG_ORDERS",),
        "missing": (("RAW.EXT", "Snowflake never clones external tables"),),
        "prod_references": {"ANALYTICS.STG_ORDERS": ("DEMO.RAW.ORDERS",)},
        "verified": False,
        "row_counts": {"RAW.ORDERS": 200},
        "at": "2026-01-01T09:00:00+00:00",
        "at_ignored_reason": None,
        "fallback_reason": "CREATE DATABASE … CLONE left 1 of 2 tables out of the clone",
        "notes": ("a note",),
        "created_at": "2026-01-01T10:00:00+00:00",
        **fields,
    }
    return CloneResult(**values)


def test_the_package_keeps_its_names() -> None:
    assert SnowflakeCloneHook is HookInItsModule
    assert sorted(package.__all__) == [
        "COUNT_CHUNK",
        "CloneResult",
        "DROP_OUTCOMES",
        "ObjectKey",
        "STRATEGIES",
        "SnowflakeCloneHook",
    ]
    for name in package.__all__:
        assert getattr(package, name) is not None


class TestResult:
    def test_round_trips_through_json(self) -> None:
        original = result()
        assert CloneResult.from_dict(json.loads(json.dumps(original.to_dict()))) == original
        assert original.to_dict()["missing"] == [
            {"object": "RAW.EXT", "reason": "Snowflake never clones external tables"}
        ]

    def test_unknown_strategy_is_refused(self) -> None:
        with pytest.raises(ValueError, match="strategy must be one of"):
            result(strategy="schemas")


class TestRefusedBeforeConnecting:
    """A name that is not a selfheal clone never reaches the warehouse: there is none here to reach."""

    @pytest.fixture
    def hook(self) -> SnowflakeCloneHook:
        return SnowflakeCloneHook(snowflake_conn_id="no_such_connection")

    def test_drop(self, hook: SnowflakeCloneHook) -> None:
        with pytest.raises(ValueError, match="refusing to drop 'DEMO': it is not a selfheal clone name"):
            hook.drop_clone("DEMO")

    def test_repoint_views(self, hook: SnowflakeCloneHook) -> None:
        with pytest.raises(ValueError, match="refusing to repoint views in 'DEMO'"):
            hook.repoint_views("DEMO", "DEMO")

    def test_verify(self, hook: SnowflakeCloneHook) -> None:
        with pytest.raises(ValueError, match="refusing to verify 'DEMO'"):
            hook.verify_clone(result(clone_database="DEMO"))

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            pytest.param({"schemas": ["RAW"], "tables": ["RAW.ORDERS"]}, "not both", id="both"),
            pytest.param({"schemas": []}, "schemas must not be empty", id="no-schemas"),
            pytest.param({"tables": []}, "tables must not be empty", id="no-tables"),
            pytest.param({"tables": ["ORDERS"]}, "tables must be SCHEMA.TABLE", id="unqualified-table"),
        ],
    )
    def test_bad_clone_arguments(
        self, hook: SnowflakeCloneHook, arguments: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValueError, match=message):
            hook.clone_for_incident("DEMO", "inc-0001", **arguments)

    def test_negative_ttl(self, hook: SnowflakeCloneHook) -> None:
        with pytest.raises(ValueError, match="ttl must not be negative"):
            hook.sweep_clones(timedelta(hours=-1))
