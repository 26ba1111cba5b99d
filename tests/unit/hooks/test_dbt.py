from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from airflow.models import Connection

from airflow_selfheal.hooks import dbt as dbt_module
from airflow_selfheal.hooks.dbt import (
    DbtValidationHook,
    NodeStatus,
    ValidationRefused,
    ValidationResult,
    check_profile,
    check_target,
    isolation_problems,
    parse_run_results,
    rewrite_source_databases,
    validation_profile,
)
from airflow_selfheal.hooks.sandbox import Sandbox, SandboxError

if TYPE_CHECKING:
    from pathlib import Path

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
CONN_ID = "sf_validation_unit"
PASSWORD = "s3cret-pw"
SOURCES_YML = """\
version: 2

sources:
  - name: raw  # landed by the ingestion job
    database: DEMO
    schema: RAW
    tables:
      - name: orders
  - name: shared
    database: REFERENCE_DATA
    schema: PUBLIC
    tables:
      - name: countries
  - name: templated
    database: "{{ env_var('RAW_DB', 'DEMO') }}"
    schema: RAW
    tables:
      - name: payments
"""


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = Connection(
        conn_id=CONN_ID,
        conn_type="snowflake",
        login="etl",
        password=PASSWORD,
        schema="ANALYTICS",
        extra=json.dumps(
            {
                "account": "acme",
                "database": "DEMO",
                "warehouse": "WH",
                "role": "TRANSFORMER",
                "host": "127.0.0.1",
                "port": 8765,
                "protocol": "http",
            }
        ),
    )
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", conn.as_json())


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    live = tmp_path / "live"
    (live / "models").mkdir(parents=True)
    (live / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (live / "models" / "a.sql").write_text("select 1 as id\n")
    return Sandbox.create(live, "inc-0001", root=tmp_path / "work")


class TestCheckTarget:
    @pytest.mark.parametrize(
        "target", [pytest.param("DEMO", id="same"), pytest.param("demo", id="unquoted-case")]
    )
    def test_production_is_refused(self, target: str) -> None:
        with pytest.raises(ValidationRefused, match="it is the production database"):
            check_target(target, "DEMO")

    def test_a_database_that_is_not_a_clone_is_refused(self) -> None:
        with pytest.raises(ValidationRefused, match="not a selfheal clone name"):
            check_target("ANALYTICS_DEV", "DEMO")

    def test_unknown_production_is_refused(self) -> None:
        with pytest.raises(ValidationRefused, match="cannot tell the production database"):
            check_target(CLONE, None)

    def test_clone_is_accepted_in_stored_form(self) -> None:
        assert check_target(CLONE.lower(), "demo") == (CLONE, "DEMO")


class TestProfile:
    def test_profile_targets_the_clone_without_the_password(self, tmp_path: Path) -> None:
        params = {
            "user": "etl",
            "password": PASSWORD,
            "schema": "ANALYTICS",
            "database": "DEMO",
            "account": "acme",
            "region": "eu-west-1",
            "warehouse": "WH",
            "role": "TRANSFORMER",
            "authenticator": "snowflake",
            "host": "127.0.0.1",
            "port": 8765,
            "protocol": "http",
        }
        profile = validation_profile(params, clone_database=CLONE, threads=2)
        assert profile == {
            "selfheal_validation": {
                "target": "selfheal_clone",
                "outputs": {
                    "selfheal_clone": {
                        "type": "snowflake",
                        "account": "acme.eu-west-1",
                        "user": "etl",
                        "password": "{{ env_var('SELFHEAL_DBT_PASSWORD') }}",
                        "database": CLONE,
                        "schema": "ANALYTICS",
                        "threads": 2,
                        "client_session_keep_alive": False,
                        "warehouse": "WH",
                        "role": "TRANSFORMER",
                        "host": "127.0.0.1",
                        "protocol": "http",
                        "port": 8765,
                    }
                },
            }
        }
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(profile))
        check_profile(path, clone_database=CLONE, prod_database="DEMO", password=PASSWORD)
        assert PASSWORD not in path.read_text()

    @pytest.mark.parametrize(
        ("params", "fragment"),
        [
            pytest.param({"private_key": b"k"}, "key pair", id="key-pair"),
            pytest.param({"authenticator": "externalbrowser"}, "externalbrowser", id="browser"),
            pytest.param({"schema": None}, "has no schema", id="no-schema"),
        ],
    )
    def test_unsupported_connections_are_refused(self, params: dict[str, Any], fragment: str) -> None:
        base = {"user": "etl", "password": "x", "schema": "S", "account": "acme"}
        with pytest.raises(ValidationRefused, match=fragment):
            validation_profile({**base, **params}, clone_database=CLONE)

    @pytest.mark.parametrize(
        ("change", "fragment"),
        [
            pytest.param({"database": "DEMO"}, "builds into 'DEMO', not the clone", id="prod-database"),
            pytest.param({"database": "OTHER"}, "builds into 'OTHER', not the clone", id="other-database"),
            pytest.param({"password": PASSWORD}, "contains the connection password", id="password-on-disk"),
        ],
    )
    def test_tampered_profile_is_refused(self, tmp_path: Path, change: dict[str, str], fragment: str) -> None:
        profile = validation_profile(
            {"user": "u", "schema": "S", "account": "a"}, clone_database=CLONE, threads=1
        )
        profile["selfheal_validation"]["outputs"]["selfheal_clone"].update(change)
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(profile))
        with pytest.raises(ValidationRefused, match=fragment):
            check_profile(path, clone_database=CLONE, prod_database="DEMO", password=PASSWORD)


class TestBuildRefusesBeforeRunning:
    """No attempt folder and no dbt process: the refusals come first."""

    def test_target_is_the_connections_database(self, connection: None, sandbox: Sandbox) -> None:
        with pytest.raises(ValidationRefused, match="DEMO: it is the production database"):
            DbtValidationHook().build(
                sandbox.project_dir, select="a+", target_database="demo", snowflake_conn_id=CONN_ID
            )
        assert sandbox.validation_dirs() == []

    def test_target_is_production_given_explicitly(self, connection: None, sandbox: Sandbox) -> None:
        with pytest.raises(ValidationRefused, match="it is the production database"):
            DbtValidationHook().build(
                sandbox.project_dir,
                select="a+",
                target_database="PROD_DB",
                snowflake_conn_id=CONN_ID,
                prod_database="prod_db",
            )
        assert sandbox.validation_dirs() == []

    def test_connections_database_stays_refused_when_prod_is_given(
        self, connection: None, sandbox: Sandbox
    ) -> None:
        with pytest.raises(ValidationRefused, match="refusing to validate in DEMO"):
            DbtValidationHook().build(
                sandbox.project_dir,
                select="a+",
                target_database="DEMO",
                snowflake_conn_id=CONN_ID,
                prod_database="PROD_DB",
            )
        assert sandbox.validation_dirs() == []

    def test_generated_profile_not_on_the_clone(
        self, connection: None, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = dbt_module.validation_profile

        def pointed_at_prod(params: Any, *, clone_database: str, threads: int = 4) -> dict[str, Any]:
            return real(params, clone_database="DEMO", threads=threads)

        monkeypatch.setattr(dbt_module, "validation_profile", pointed_at_prod)
        with pytest.raises(ValidationRefused, match="builds into 'DEMO', not the clone"):
            DbtValidationHook().build(
                sandbox.project_dir, select="a+", target_database=CLONE, snowflake_conn_id=CONN_ID
            )
        (attempt,) = sandbox.validation_dirs()
        assert not (attempt / ".request.json").exists()
        assert not (attempt / "guard.json").exists()

    def test_live_project_is_not_a_sandbox(self, connection: None, sandbox: Sandbox) -> None:
        with pytest.raises(SandboxError, match="not a sandbox project copy"):
            DbtValidationHook().build(
                sandbox.live_project, select="a+", target_database=CLONE, snowflake_conn_id=CONN_ID
            )


class TestSourceRewrite:
    def test_literal_production_sources_point_at_the_clone(self, tmp_path: Path) -> None:
        (tmp_path / "models").mkdir()
        sources = tmp_path / "models" / "_sources.yml"
        sources.write_text(SOURCES_YML)
        (tmp_path / "target").mkdir()
        (tmp_path / "target" / "_sources.yml").write_text(SOURCES_YML)

        rewrites = rewrite_source_databases(tmp_path, prod_database="DEMO", clone_database=CLONE)

        assert rewrites == [{"file": "models/_sources.yml", "source": "raw", "from": "DEMO", "to": CLONE}]
        databases = {
            item["name"]: item["database"] for item in yaml.safe_load(sources.read_text())["sources"]
        }
        assert databases == {
            "raw": CLONE,
            "shared": "REFERENCE_DATA",
            "templated": "{{ env_var('RAW_DB', 'DEMO') }}",
        }
        assert (tmp_path / "target" / "_sources.yml").read_text() == SOURCES_YML

    def test_sources_named_after_parsing_are_rewritten(self, tmp_path: Path) -> None:
        (tmp_path / "_sources.yml").write_text(SOURCES_YML)
        rewrites = rewrite_source_databases(
            tmp_path, prod_database="DEMO", clone_database=CLONE, only=[("_sources.yml", "templated")]
        )
        assert [item["source"] for item in rewrites] == ["templated"]
        databases = {
            item["name"]: item["database"]
            for item in yaml.safe_load((tmp_path / "_sources.yml").read_text())["sources"]
        }
        assert databases["templated"] == CLONE
        assert databases["raw"] == "DEMO"


class TestIsolationProblems:
    def _node(self, unique_id: str, **fields: Any) -> dict[str, Any]:
        return {
            "unique_id": unique_id,
            "resource_type": unique_id.split(".")[0],
            "database": CLONE,
            "materialized": "view",
            "hooks": [],
            **fields,
        }

    def test_isolated_project_has_none(self) -> None:
        summary = {
            "sources": [{"unique_id": "source.shop.raw.orders", "database": CLONE}],
            "nodes": [
                self._node("model.shop.stg_orders"),
                self._node("test.shop.unique_x"),
                self._node("model.shop.eph", database="DEMO", materialized="ephemeral"),
                self._node("model.shop.grants", hooks=["grant select on {{ this }} to role reporter"]),
            ],
        }
        assert isolation_problems(summary, clone_database=CLONE, prod_database="DEMO") == []

    def test_every_escape_is_named(self) -> None:
        summary = {
            "sources": [{"unique_id": "source.shop.raw.orders", "database": "demo"}],
            "nodes": [
                self._node("model.shop.fct", database="DEMO"),
                self._node("seed.shop.countries", database="OTHER_DB"),
                self._node("model.shop.audit", hooks=["insert into DEMO.AUDIT.LOG select 1"]),
                self._node(
                    "operation.shop.shop-on-run-end-0",
                    resource_type="operation",
                    hooks=["delete from demo.raw.orders"],
                ),
            ],
        }
        assert isolation_problems(summary, clone_database=CLONE, prod_database="DEMO") == [
            "source.shop.raw.orders still reads the production database DEMO",
            "model.shop.fct would build into 'DEMO', not the clone",
            "seed.shop.countries would build into 'OTHER_DB', not the clone",
            "model.shop.audit has a hook naming production: DEMO.AUDIT.LOG",
            "operation.shop.shop-on-run-end-0 has a hook naming production: DEMO.RAW.ORDERS",
        ]


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


@pytest.mark.slow
def test_child_drops_dbt_flags_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt.cli.main import cli

    environ = {
        **os.environ,
        "DBT_PROFILES_DIR": "/srv/prod-profiles",
        "DBT_TARGET": "prod",
        "DBT_DEFER": "1",
        "DBT_STATE": "/srv/prod-state",
        "DBT_ENV_SECRET_API": "kept",
        "MY_SETTING": "kept",
    }
    monkeypatch.setattr(os, "environ", environ)
    dbt_module._scrub_dbt_flag_environment(cli)
    assert sorted(name for name in environ if name.startswith("DBT_")) == [
        "DBT_ENV_SECRET_API",
        "DBT_SEND_ANONYMOUS_USAGE_STATS",
    ]
    assert (environ["DBT_SEND_ANONYMOUS_USAGE_STATS"], environ["MY_SETTING"]) == ("False", "kept")
