"""Snowflake access for the repair loop: the stock ``SnowflakeHook`` plus the endpoint settings it drops.

The stock hook forwards ``host`` and ``port`` from the connection extras but not ``protocol``. Without it,
the same code cannot reach both real Snowflake (https on 443) and a stand-in or private endpoint served over
plain http. This hook forwards all three and checks them, so a bad connection fails with a message that names
the field to fix rather than a connector traceback.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

from airflow_selfheal.core.drift import INFORMATION_SCHEMA_COLUMNS
from airflow_selfheal.core.identifiers import qualified, quote_identifier

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

_PROTOCOLS = ("https", "http")
COLUMN_FIELDS = INFORMATION_SCHEMA_COLUMNS
# Snowflake refuses information_schema queries whose result would be too large (error 090030).
_TOO_MUCH_DATA = ("too much data", "090030")


def columns_query(database: str, schema_count: int) -> str:
    """The one metadata query per database: every column of the given schemas (bound as parameters)."""
    placeholders = ", ".join(["%s"] * schema_count)
    return (
        f"select {', '.join(COLUMN_FIELDS)} "  # noqa: S608 - quoted identifier, bound values
        f"from {quote_identifier(database)}.INFORMATION_SCHEMA.COLUMNS "
        f"where TABLE_SCHEMA in ({placeholders}) "
        "order by TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    )


def show_columns_type(descriptor: str) -> tuple[str, int | None, int | None, int | None]:
    """Translate SHOW COLUMNS' JSON type descriptor into (type, precision, scale, length)."""
    try:
        info = json.loads(descriptor)
    except (TypeError, ValueError):
        return str(descriptor), None, None, None
    kind = str(info.get("type", "")).upper()
    names = {"FIXED": "NUMBER", "TEXT": "TEXT", "REAL": "FLOAT"}
    return names.get(kind, kind), info.get("precision"), info.get("scale"), info.get("length")


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: metadata queries sent by this hook; the snapshot's cost must not grow with the table count.
        self.metadata_queries = 0

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
                    f'Fix the connection\'s extra JSON, e.g. "port": 443.'
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

    def fetch_columns(self, database: str, schemas: Sequence[str]) -> tuple[list[dict[str, Any]], str]:
        """
        Every column of ``schemas`` in ``database``, as information_schema-shaped rows.

        One query per database, whatever the number of tables. When Snowflake refuses that query as too large,
        fall back to one ``SHOW COLUMNS IN SCHEMA`` per schema.

        :param database: stored-form database name, e.g. ``DEMO``.
        :param schemas: stored-form schema names, e.g. ``["RAW"]``.
        :return: the rows (dicts keyed by :data:`COLUMN_FIELDS`) and the source used
            (``information_schema`` or ``show_columns``).
        """
        if not schemas:
            return [], "information_schema"
        conn = self.get_conn()
        try:
            try:
                rows = self._query(conn, columns_query(database, len(schemas)), tuple(schemas))
            except Exception as exc:
                if not any(marker in str(exc).lower() for marker in _TOO_MUCH_DATA):
                    raise
                self.log.warning(
                    "information_schema refused as too large for %s; using SHOW COLUMNS", database
                )
                return self._show_columns(conn, database, schemas), "show_columns"
            return [dict(zip(COLUMN_FIELDS, row, strict=False)) for row in rows], "information_schema"
        finally:
            conn.close()

    def _show_columns(self, conn: Any, database: str, schemas: Iterable[str]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = []
        for schema in schemas:
            positions: dict[str, int] = {}
            for row in self._query(
                conn, f"show columns in schema {qualified(database, schema)}", None, as_dict=True
            ):
                table = row["table_name"]
                positions[table] = positions.get(table, 0) + 1
                data_type, precision, scale, length = show_columns_type(row["data_type"])
                result.append(
                    {
                        "TABLE_CATALOG": row.get("database_name") or database,
                        "TABLE_SCHEMA": row["schema_name"],
                        "TABLE_NAME": table,
                        "COLUMN_NAME": row["column_name"],
                        "DATA_TYPE": data_type,
                        "IS_NULLABLE": "YES" if str(row.get("null?")).lower() == "true" else "NO",
                        "ORDINAL_POSITION": positions[table],
                        "NUMERIC_PRECISION": precision,
                        "NUMERIC_SCALE": scale,
                        "CHARACTER_MAXIMUM_LENGTH": length,
                    }
                )
        return result

    def _query(
        self, conn: Any, sql: str, parameters: Sequence[Any] | None, *, as_dict: bool = False
    ) -> list[Any]:
        """Run one read-only metadata query and count it in ``metadata_queries``."""
        from snowflake.connector import DictCursor

        self.metadata_queries += 1
        cursor = conn.cursor(DictCursor) if as_dict else conn.cursor()
        try:
            cursor.execute(sql, parameters)
            return list(cursor.fetchall())
        finally:
            cursor.close()
