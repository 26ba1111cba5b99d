"""The validation and production profiles: what they name, and the checks that refuse a wrong one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import yaml

from airflow_selfheal.hooks.dbt import (
    PROD_PROFILE_NAME,
    PROD_TARGET_NAME,
    PROFILE_NAME,
    TARGET_NAME,
    ProductionRefused,
    ValidationRefused,
    check_production_profile,
    check_production_target,
    check_profile,
    check_target,
    production_profile,
    validation_profile,
)

if TYPE_CHECKING:
    from pathlib import Path

CLONE = "DEMO__SELFHEAL_INC_0001__20260101T100000Z"
PASSWORD = "s3cret-pw"
PARAMS = {
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
        profile = validation_profile(PARAMS, clone_database=CLONE, threads=2)
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

    def test_a_production_profile_is_not_a_validation_profile(self, tmp_path: Path) -> None:
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(production_profile(PARAMS, prod_database="DEMO")))
        with pytest.raises(ValidationRefused, match="is not a selfheal_validation profile"):
            check_profile(path, clone_database=CLONE, prod_database="DEMO", password=PASSWORD)

    def test_a_second_profile_in_the_file_is_refused(self, tmp_path: Path) -> None:
        profile = {
            **validation_profile(PARAMS, clone_database=CLONE),
            **production_profile(PARAMS, prod_database="DEMO"),
        }
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(profile))
        with pytest.raises(ValidationRefused, match="must hold exactly the profile 'selfheal_validation'"):
            check_profile(path, clone_database=CLONE, prod_database="DEMO", password=PASSWORD)


class TestProductionProfile:
    def test_names_production_and_never_the_validation_target(self, tmp_path: Path) -> None:
        profile = production_profile(PARAMS, prod_database="demo", threads=3)

        assert list(profile) == [PROD_PROFILE_NAME] == ["selfheal_production"]
        assert profile[PROD_PROFILE_NAME]["target"] == PROD_TARGET_NAME == "selfheal_prod"
        (output,) = profile[PROD_PROFILE_NAME]["outputs"].values()
        validation = validation_profile(PARAMS, clone_database=CLONE, threads=3)
        # The same endpoint and credentials as validation; only the database and the names differ.
        assert output == {**validation[PROFILE_NAME]["outputs"][TARGET_NAME], "database": "DEMO"}
        text = yaml.safe_dump(profile)
        assert TARGET_NAME not in text
        assert PROFILE_NAME not in text
        assert PASSWORD not in text
        assert CLONE not in text
        path = tmp_path / "profiles.yml"
        path.write_text(text)
        check_production_profile(path, prod_database="DEMO", password=PASSWORD)

    @pytest.mark.parametrize(
        "database", [pytest.param(CLONE, id="clone"), pytest.param(CLONE.lower(), id="clone-lowercase")]
    )
    def test_a_clone_is_never_production(self, database: str) -> None:
        with pytest.raises(ProductionRefused, match="it is a selfheal clone, not the production database"):
            production_profile(PARAMS, prod_database=database)
        with pytest.raises(ProductionRefused, match="selfheal clone"):
            check_production_target(database)

    @pytest.mark.parametrize("database", ["", "  "])
    def test_production_must_be_named(self, database: str) -> None:
        with pytest.raises(ProductionRefused, match="must name the production database"):
            check_production_target(database)

    def test_unsupported_connections_are_refused(self) -> None:
        with pytest.raises(ProductionRefused, match="production dbt supports password authentication only"):
            production_profile({**PARAMS, "private_key_file": "/k.p8"}, prod_database="DEMO")

    def test_the_validation_profile_is_refused_for_production(self, tmp_path: Path) -> None:
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(validation_profile(PARAMS, clone_database=CLONE)))
        with pytest.raises(ProductionRefused, match="is not a selfheal_production profile"):
            check_production_profile(path, prod_database="DEMO", password=PASSWORD)

    @pytest.mark.parametrize(
        ("change", "fragment"),
        [
            pytest.param({"database": CLONE}, f"builds into '{CLONE}', not production", id="clone"),
            pytest.param({"database": "OTHER"}, "builds into 'OTHER', not production", id="other-database"),
            pytest.param({"password": PASSWORD}, "contains the connection password", id="password-on-disk"),
            pytest.param({"password": "hunter22"}, "must be the reference", id="literal-password"),
        ],
    )
    def test_tampered_production_profile_is_refused(
        self, tmp_path: Path, change: dict[str, str], fragment: str
    ) -> None:
        profile = production_profile(PARAMS, prod_database="DEMO")
        profile[PROD_PROFILE_NAME]["outputs"][PROD_TARGET_NAME].update(change)
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(profile))
        with pytest.raises(ProductionRefused, match=fragment):
            check_production_profile(path, prod_database="DEMO", password=PASSWORD)

    def test_the_validation_target_inside_a_production_profile_is_refused(self, tmp_path: Path) -> None:
        profile = production_profile(PARAMS, prod_database="DEMO")
        outputs = profile[PROD_PROFILE_NAME]["outputs"]
        outputs[TARGET_NAME] = {**outputs[PROD_TARGET_NAME], "database": CLONE}
        path = tmp_path / "profiles.yml"
        path.write_text(yaml.safe_dump(profile))
        with pytest.raises(ProductionRefused, match="must hold exactly the output 'selfheal_prod'"):
            check_production_profile(path, prod_database="DEMO", password=PASSWORD)
