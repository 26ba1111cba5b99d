"""Snowflake access for the repair loop: the stock ``SnowflakeHook`` plus the endpoint settings it drops.

The stock hook forwards ``host`` and ``port`` from the connection extras but not ``protocol``. Without it,
the same code cannot reach both real Snowflake (https on 443) and a stand-in or private endpoint served over
plain http. This hook forwards all three and checks them, so a bad connection fails with a message that names
the field to fix rather than a connector traceback.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

_PROTOCOLS = ("https", "http")


class SelfhealConnectionError(ValueError):
    """A Snowflake connection is misconfigured; the message names the connection, the field and the fix."""


class SelfhealSnowflakeHook(SnowflakeHook):
    """
    ``SnowflakeHook`` that also honours ``protocol`` (and validates ``host``/``port``) from the extras.

    Connection extras used on top of the stock ones:

    * ``host``: the account host, for a private link or a local stand-in (stock behaviour).
    * ``port``: an integer (stock behaviour, validated here).
    * ``protocol``: ``https`` (default) or ``http``.

    .. code-block:: python

        hook = SelfhealSnowflakeHook(snowflake_conn_id="snowflake_default")
        rows = hook.get_records("select current_database()")

    :param snowflake_conn_id: Airflow connection id of type ``snowflake``.
    """

    hook_name = "Snowflake (selfheal)"

    def _add_network_config(self, conn_config: dict[str, Any], extra_dict: dict[str, Any]) -> None:
        super()._add_network_config(conn_config, extra_dict)
        conn_id = self.get_conn_id()
        port = extra_dict.get("port")
        if port not in (None, ""):
            try:
                conn_config["port"] = int(str(port))
            except (TypeError, ValueError):
                raise SelfhealConnectionError(
                    f"Snowflake connection {conn_id!r}: extra 'port' must be an integer, got {port!r}. "
                    f"Fix the connection's extra JSON, e.g. \"port\": 443."
                ) from None
        protocol = extra_dict.get("protocol")
        if protocol not in (None, ""):
            protocol = str(protocol).lower()
            if protocol not in _PROTOCOLS:
                raise SelfhealConnectionError(
                    f"Snowflake connection {conn_id!r}: extra 'protocol' must be one of {_PROTOCOLS}, "
                    f"got {extra_dict.get('protocol')!r}."
                )
            conn_config["protocol"] = protocol

    @property
    def conn_params(self) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect``, the same ones ``get_conn`` uses."""
        return dict(self._get_conn_params())
