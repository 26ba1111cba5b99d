"""DbtValidationHook refuses before anything runs: no attempt folder, no request, no dbt process."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.hooks.dbt import DbtValidationHook, ValidationRefused
from airflow_selfheal.hooks.dbt import profiles as profiles_module
from airflow_selfheal.hooks.sandbox import Sandbox, SandboxError

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"


class TestBuildRefusesBeforeRunning:
    """No attempt folder and no dbt process: the refusals come first."""

    def test_target_is_the_connections_database(self, connection: str, sandbox: Sandbox) -> None:
        with pytest.raises(ValidationRefused, match="DEMO: it is the production database"):
            DbtValidationHook().build(
                sandbox.project_dir, select="a+", target_database="demo", snowflake_conn_id=connection
            )
        assert sandbox.validation_dirs() == []

    def test_target_is_production_given_explicitly(self, connection: str, sandbox: Sandbox) -> None:
        with pytest.raises(ValidationRefused, match="it is the production database"):
            DbtValidationHook().build(
                sandbox.project_dir,
                select="a+",
                target_database="PROD_DB",
                snowflake_conn_id=connection,
                prod_database="prod_db",
            )
        assert sandbox.validation_dirs() == []

    def test_connections_database_stays_refused_when_prod_is_given(
        self, connection: str, sandbox: Sandbox
    ) -> None:
        with pytest.raises(ValidationRefused, match="refusing to validate in DEMO"):
            DbtValidationHook().build(
                sandbox.project_dir,
                select="a+",
                target_database="DEMO",
                snowflake_conn_id=connection,
                prod_database="PROD_DB",
            )
        assert sandbox.validation_dirs() == []

    def test_generated_profile_not_on_the_clone(
        self, connection: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = profiles_module.validation_profile

        def pointed_at_prod(params: Any, *, clone_database: str, threads: int = 4) -> dict[str, Any]:
            return real(params, clone_database="DEMO", threads=threads)

        # The hook looks the profile builder up in its module at call time, so this replaces the one it uses.
        monkeypatch.setattr(profiles_module, "validation_profile", pointed_at_prod)
        with pytest.raises(ValidationRefused, match="builds into 'DEMO', not the clone"):
            DbtValidationHook().build(
                sandbox.project_dir, select="a+", target_database=CLONE, snowflake_conn_id=connection
            )
        (attempt,) = sandbox.validation_dirs()
        assert not (attempt / ".request.json").exists()
        assert not (attempt / "guard.json").exists()

    def test_live_project_is_not_a_sandbox(self, connection: str, sandbox: Sandbox) -> None:
        with pytest.raises(SandboxError, match="not a sandbox project copy"):
            DbtValidationHook().build(
                sandbox.live_project, select="a+", target_database=CLONE, snowflake_conn_id=connection
            )

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            pytest.param({"select": " "}, "select must name the nodes", id="empty-select"),
            pytest.param({"command": "seed"}, "command must be one of", id="unknown-command"),
        ],
    )
    def test_bad_arguments(
        self, connection: str, sandbox: Sandbox, arguments: dict[str, str], message: str
    ) -> None:
        values = {"select": "a+", "target_database": CLONE, "snowflake_conn_id": connection, **arguments}
        with pytest.raises(ValueError, match=message):
            DbtValidationHook().build(sandbox.project_dir, **values)
        assert sandbox.validation_dirs() == []
