"""Cosmos profile mappings that carry the full Snowflake endpoint (host, port and protocol) into dbt.

Cosmos' stock Snowflake user/password mapping forwards ``host`` and ``port`` from the connection extras but
not ``protocol``, so dbt cannot reach an http endpoint (a private proxy, or the embedded stand-in) through
the same Airflow connection that :class:`~airflow_selfheal.hooks.snowflake.SelfhealSnowflakeHook` uses.
"""

from __future__ import annotations

from typing import Any

from cosmos.profiles.snowflake.user_pass import SnowflakeUserPasswordProfileMapping


class SelfhealSnowflakeProfileMapping(SnowflakeUserPasswordProfileMapping):
    """
    Snowflake user/password mapping that also maps ``extra.protocol``.

    .. code-block:: python

        from cosmos import ProfileConfig
        from airflow_selfheal.hooks.profiles import SelfhealSnowflakeProfileMapping

        profile_config = ProfileConfig(
            profile_name="shop",
            target_name="prod",
            profile_mapping=SelfhealSnowflakeProfileMapping(conn_id="snowflake_default"),
        )
    """

    airflow_param_mapping = {
        **SnowflakeUserPasswordProfileMapping.airflow_param_mapping,
        "protocol": "extra.protocol",
    }

    @property
    def profile(self) -> dict[str, Any | None]:
        """The dbt profile; ``port`` is coerced to an integer because dbt-snowflake rejects strings."""
        profile = dict(super().profile)
        if profile.get("port") not in (None, ""):
            profile["port"] = int(str(profile["port"]))
        return profile
