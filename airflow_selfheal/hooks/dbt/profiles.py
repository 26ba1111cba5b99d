"""
The ``profiles.yml`` documents dbt runs with, and the checks made on them before dbt starts.

Two profiles, never mixed up:

* the **validation** profile (:data:`PROFILE_NAME`, target :data:`TARGET_NAME`) builds into an incident's clone
  and nothing else; :func:`check_target` and :func:`check_profile` refuse production or any name that is not a
  selfheal clone;
* the **production** profile (:data:`PROD_PROFILE_NAME`, target :data:`PROD_TARGET_NAME`) builds into the
  production database, for the re-run after a fix is promoted; it is written only by
  :class:`~airflow_selfheal.hooks.dbt.production.DbtProductionHook`, and :func:`check_production_profile`
  refuses one that names the validation target or a clone.

Neither holds the password: ``password`` is :data:`PASSWORD_REFERENCE`, which dbt reads from the child
process's environment (:data:`PASSWORD_ENV`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.clone_sql import parse_clone_name
from airflow_selfheal.core.identifiers import normalize_identifier

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

PASSWORD_ENV = "SELFHEAL_DBT_PASSWORD"  # noqa: S105 - the name of the variable, not a password
PASSWORD_REFERENCE = "{{ env_var('" + PASSWORD_ENV + "') }}"
PROFILE_NAME = "selfheal_validation"
TARGET_NAME = "selfheal_clone"
PROD_PROFILE_NAME = "selfheal_production"
PROD_TARGET_NAME = "selfheal_prod"


class ValidationRefused(ValueError):
    """Validation would not be isolated from production; nothing was run. The message says why."""


class ProductionRefused(ValueError):
    """A production run was refused before dbt started (e.g. its target is a clone); the message says why."""


def check_target(target_database: str, prod_database: str | None) -> tuple[str, str]:
    """
    Refuse a validation target that is production or not a selfheal clone.

    :param target_database: the database dbt will build into, as written in SQL.
    :param prod_database: the production database (the connection's), as written in SQL.
    :return: both in stored form, ``(clone, prod)``.
    :raises ValidationRefused: if the production database is unknown, the target is production, or the target
        is not a clone name made by :func:`~airflow_selfheal.core.clone_sql.clone_name`.
    """
    if not prod_database:
        raise ValidationRefused(
            "cannot tell the production database: the connection names none; pass prod_database"
        )
    clone, prod = normalize_identifier(target_database), normalize_identifier(prod_database)
    if clone == prod:
        raise ValidationRefused(
            f"refusing to validate in {clone}: it is the production database named by the connection"
        )
    if parse_clone_name(clone) is None:
        raise ValidationRefused(
            f"refusing to validate in {clone}: it is not a selfheal clone name "
            "(<SOURCE>__SELFHEAL_<INCIDENT>__<YYYYMMDDTHHMMSSZ>)"
        )
    return clone, prod


def check_production_target(prod_database: str) -> str:
    """
    Refuse a production target that is empty or is a selfheal clone (a clone is never production).

    :param prod_database: the production database, as written in SQL.
    :return: its stored form.
    :raises ProductionRefused: naming what is wrong.
    """
    if not isinstance(prod_database, str) or not prod_database.strip():
        raise ProductionRefused("prod_database must name the production database")
    prod = normalize_identifier(prod_database)
    if parse_clone_name(prod) is not None:
        raise ProductionRefused(
            f"refusing to run production dbt in {prod}: it is a selfheal clone, not the production database"
        )
    return prod


def _snowflake_output(
    conn_params: Mapping[str, Any],
    *,
    database: str,
    threads: int,
    purpose: str,
    error: type[ValueError],
) -> dict[str, Any]:
    """One dbt-snowflake output from the connection's connector arguments, password by reference."""
    if conn_params.get("private_key") or conn_params.get("private_key_file"):
        raise error(f"{purpose} supports password authentication only; the connection uses a key pair")
    authenticator = str(conn_params.get("authenticator") or "snowflake").lower()
    if authenticator != "snowflake":
        raise error(f"{purpose} supports password authentication only; the connection uses {authenticator!r}")
    for key in ("account", "user", "schema"):
        if not conn_params.get(key):
            raise error(f"the Snowflake connection has no {key}; dbt needs one")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    account = str(conn_params["account"])
    region = conn_params.get("region")
    if region and f".{region}" not in account:
        account = f"{account}.{region}"
    output: dict[str, Any] = {
        "type": "snowflake",
        "account": account,
        "user": str(conn_params["user"]),
        "password": PASSWORD_REFERENCE,
        "database": database,
        "schema": str(conn_params["schema"]),
        "threads": threads,
        "client_session_keep_alive": False,
    }
    for key in ("warehouse", "role", "host", "protocol"):
        if conn_params.get(key):
            output[key] = str(conn_params[key])
    if conn_params.get("port") not in (None, ""):
        output["port"] = int(conn_params["port"])
    return output


def validation_profile(
    conn_params: Mapping[str, Any], *, clone_database: str, threads: int = 4
) -> dict[str, Any]:
    """
    A dbt ``profiles.yml`` document for the clone, from ``SelfhealSnowflakeHook.conn_params``.

    The password is not in it: ``password`` is :data:`PASSWORD_REFERENCE`, read by dbt from the child's
    environment.

    :param conn_params: the connection's connector arguments (account, user, warehouse, role, schema, host, port,
        protocol...).
    :param clone_database: the clone, stored form.
    :param threads: dbt threads.
    :return: ``{PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: {...}}}}``.
    :raises ValidationRefused: for key-pair or external-browser/OAuth connections, or one without a user,
        account or schema.
    """
    output = _snowflake_output(
        conn_params, database=clone_database, threads=threads, purpose="validation", error=ValidationRefused
    )
    return {PROFILE_NAME: {"target": TARGET_NAME, "outputs": {TARGET_NAME: output}}}


def production_profile(
    conn_params: Mapping[str, Any], *, prod_database: str, threads: int = 4
) -> dict[str, Any]:
    """
    A dbt ``profiles.yml`` document for production, from ``SelfhealSnowflakeHook.conn_params``.

    Its profile and target are named for production (:data:`PROD_PROFILE_NAME`, :data:`PROD_TARGET_NAME`), so a
    project's ``{{ target.name }}`` and dbt's own log never show the validation target.

    :param conn_params: the connection's connector arguments.
    :param prod_database: the production database, stored form.
    :param threads: dbt threads.
    :return: ``{PROD_PROFILE_NAME: {"target": PROD_TARGET_NAME, "outputs": {PROD_TARGET_NAME: {...}}}}``.
    :raises ProductionRefused: for a clone as the database, key-pair or external-browser/OAuth connections, or
        one without a user, account or schema.
    """
    database = check_production_target(prod_database)
    output = _snowflake_output(
        conn_params, database=database, threads=threads, purpose="production dbt", error=ProductionRefused
    )
    return {PROD_PROFILE_NAME: {"target": PROD_TARGET_NAME, "outputs": {PROD_TARGET_NAME: output}}}


def _selected_output(
    path: Path, text: str, profile_name: str, target_name: str, error: type[ValueError]
) -> dict[str, Any]:
    """The only output of the only profile in a written ``profiles.yml``, or ``error``."""
    data = yaml.safe_load(text)
    try:
        profile = data[profile_name]
        outputs = profile["outputs"]
        selected = outputs[profile["target"]]
    except (TypeError, KeyError) as exc:
        raise error(f"{path} is not a {profile_name} profile ({exc!r})") from None
    if profile["target"] != target_name or set(outputs) != {target_name} or selected is None:
        raise error(f"{path} must hold exactly the output {target_name!r}")
    if set(data) != {profile_name}:
        raise error(f"{path} must hold exactly the profile {profile_name!r}, not {sorted(data)}")
    return dict(selected)


def check_profile(
    path: Path, *, clone_database: str, prod_database: str, password: str | None = None
) -> None:
    """
    Read a written profile back and refuse it unless every output builds into the clone, with no password.

    :param path: the ``profiles.yml``.
    :param clone_database: the clone, stored form.
    :param prod_database: the production database, stored form.
    :param password: the connection's password, which must not appear in the file.
    :raises ValidationRefused: naming what is wrong.
    """
    text = path.read_text()
    if password and len(password) >= 4 and password in text:
        raise ValidationRefused(f"{path} contains the connection password; refusing to use it")
    selected = _selected_output(path, text, PROFILE_NAME, TARGET_NAME, ValidationRefused)
    database = normalize_identifier(str(selected.get("database", "")) or '""')
    if database == prod_database or database != clone_database:
        raise ValidationRefused(
            f"{path} builds into {database!r}, not the clone {clone_database!r}; refusing to run dbt with it"
        )
    if selected.get("password") != PASSWORD_REFERENCE:
        raise ValidationRefused(f"{path}: the password must be the reference {PASSWORD_REFERENCE!r}")


def check_production_profile(path: Path, *, prod_database: str, password: str | None = None) -> None:
    """
    Read a written production profile back and refuse it unless it is exactly the production target, no password.

    :param path: the ``profiles.yml``.
    :param prod_database: the production database, stored form.
    :param password: the connection's password, which must not appear in the file.
    :raises ProductionRefused: naming what is wrong (the validation profile or target, a clone, another
        database, a password on disk).
    """
    text = path.read_text()
    if password and len(password) >= 4 and password in text:
        raise ProductionRefused(f"{path} contains the connection password; refusing to use it")
    selected = _selected_output(path, text, PROD_PROFILE_NAME, PROD_TARGET_NAME, ProductionRefused)
    database = normalize_identifier(str(selected.get("database", "")) or '""')
    if database != check_production_target(prod_database):
        raise ProductionRefused(
            f"{path} builds into {database!r}, not production {prod_database!r}; refusing to run dbt with it"
        )
    if selected.get("password") != PASSWORD_REFERENCE:
        raise ProductionRefused(f"{path}: the password must be the reference {PASSWORD_REFERENCE!r}")
