"""Snapshot the raw source schemas a dbt project reads, from Snowflake's metadata.

The drift operators, the repair DAG (accepting a baseline after a promoted fix) and the ``drift`` CLI commands all
capture schemas the same way: resolve the tables to watch (:func:`resolve_targets`), then read the columns of the
schemas holding them, one metadata query per database (:func:`capture_snapshot`).

.. code-block:: python

    hook = SelfhealSnowflakeHook(snowflake_conn_id="snowflake_default")
    targets = resolve_targets(
        manifest_path="/opt/dbt/shop/target/manifest.json", tables=None, default_database=connection_database(hook)
    )
    snapshot = capture_snapshot(hook, targets)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.drift import SchemaSnapshot
from airflow_selfheal.core.identifiers import normalize_identifier

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook


def resolve_targets(
    *, manifest_path: str | None, tables: Sequence[str] | None, default_database: str | None
) -> list[tuple[str, str, str]]:
    """
    The ``(database, schema, table)`` triples to watch: explicit ``tables``, else the manifest's sources.

    :param manifest_path: dbt ``manifest.json``; its declared sources are watched.
    :param tables: ``DB.SCHEMA.TABLE`` or ``SCHEMA.TABLE`` names; the latter take ``default_database``.
    :param default_database: the connection's database.
    """
    if tables:
        triples = []
        for name in tables:
            parts = [normalize_identifier(part) for part in name.split(".")]
            if len(parts) == 2 and default_database:
                parts = [normalize_identifier(default_database), *parts]
            if len(parts) != 3:
                raise ValueError(
                    f"table {name!r} must be DATABASE.SCHEMA.TABLE, or SCHEMA.TABLE with a database "
                    "in the Snowflake connection"
                )
            triples.append((parts[0], parts[1], parts[2]))
        return sorted(set(triples))
    if not manifest_path:
        raise ValueError("give either `tables` or `manifest_path` (whose declared sources are watched)")
    from airflow_selfheal.core.manifest import load_manifest, source_tables

    sources = source_tables(load_manifest(manifest_path), default_database=default_database)
    return sorted({(source.database, source.schema, source.identifier) for source in sources})


def capture_snapshot(hook: SelfhealSnowflakeHook, targets: Sequence[tuple[str, str, str]]) -> SchemaSnapshot:
    """
    Snapshot every table of the schemas that hold ``targets``, with one metadata query per database.

    Whole schemas are captured, not only the targets, so that a new or renamed upstream table is seen too.
    """
    schemas_by_database: dict[str, set[str]] = defaultdict(set)
    for database, schema, _ in targets:
        schemas_by_database[database].add(schema)
    rows: list[dict[str, Any]] = []
    sources: set[str] = set()
    for database, schemas in sorted(schemas_by_database.items()):
        database_rows, source = hook.fetch_columns(database, sorted(schemas))
        rows.extend(database_rows)
        sources.add(source)
    captured_at = datetime.now(timezone.utc).isoformat()
    source = "show_columns" if "show_columns" in sources else "information_schema"
    return SchemaSnapshot.from_rows(rows, captured_at=captured_at, source=source)


def connection_database(hook: SelfhealSnowflakeHook) -> str | None:
    """The database named by the Snowflake connection, the default for ``SCHEMA.TABLE`` names."""
    database = hook.conn_params.get("database")
    return str(database) if database else None
