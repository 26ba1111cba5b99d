from __future__ import annotations

import json

import pytest
from airflow.models import Connection

from airflow_selfheal.hooks.profiles import SelfhealSnowflakeProfileMapping
from airflow_selfheal.hooks.snowflake import SelfhealConnectionError, SelfhealSnowflakeHook


def _conn_env(monkeypatch: pytest.MonkeyPatch, conn_id: str, **extra: object) -> None:
    conn = Connection(
        conn_id=conn_id,
        conn_type="snowflake",
        login="analyst",
        password="s3cret",
        schema="ANALYTICS",
        extra=json.dumps({"account": "acme", "database": "PROD", "warehouse": "WH", **extra}),
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn.as_json())


class TestSelfhealSnowflakeHook:
    def test_passes_host_port_and_protocol(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _conn_env(monkeypatch, "sf_local", host="127.0.0.1", port="8765", protocol="HTTP")
        params = SelfhealSnowflakeHook(snowflake_conn_id="sf_local").conn_params
        assert (params["host"], params["port"], params["protocol"]) == ("127.0.0.1", 8765, "http")
        assert params["database"] == "PROD"

    def test_real_snowflake_defaults_leave_endpoint_to_the_connector(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _conn_env(monkeypatch, "sf_cloud")
        params = SelfhealSnowflakeHook(snowflake_conn_id="sf_cloud").conn_params
        assert "protocol" not in params
        assert "host" not in params
        assert params["account"] == "acme"

    @pytest.mark.parametrize(
        ("extra", "fragment"),
        [
            pytest.param({"protocol": "ftp"}, "extra 'protocol' must be one of", id="bad-protocol"),
            pytest.param({"port": "eighty"}, "extra 'port' must be an integer", id="bad-port"),
        ],
    )
    def test_bad_endpoint_names_connection_and_field(
        self, monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], fragment: str
    ) -> None:
        _conn_env(monkeypatch, "sf_bad", **extra)
        with pytest.raises(SelfhealConnectionError, match=fragment) as excinfo:
            _ = SelfhealSnowflakeHook(snowflake_conn_id="sf_bad").conn_params
        assert "'sf_bad'" in str(excinfo.value)

    def test_unknown_connection_id_is_named(self) -> None:
        with pytest.raises(Exception, match="no_such_conn"):
            _ = SelfhealSnowflakeHook(snowflake_conn_id="no_such_conn").conn_params


class TestSelfhealSnowflakeProfileMapping:
    def test_profile_carries_protocol_and_integer_port(self, monkeypatch: pytest.MonkeyPatch) -> None:
        _conn_env(monkeypatch, "sf_profile", host="127.0.0.1", port="8765", protocol="http")
        profile = SelfhealSnowflakeProfileMapping(conn_id="sf_profile").profile
        assert profile["protocol"] == "http"
        assert profile["port"] == 8765
        assert profile["host"] == "127.0.0.1"
        # the password travels as an env var reference, never inline in profiles.yml
        assert "s3cret" not in json.dumps(profile)
