"""Read what the repair loop needs from dbt's ``manifest.json``: declared sources and node lineage.

dbt artifacts arrive from disk, object storage or a failed task's temp dir; they may be truncated or from
another dbt version. Every reader here fails with :class:`ManifestError`, naming the file and the fix,
instead of a ``KeyError`` deep inside a callback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_selfheal.core.identifiers import normalize_identifier


class ManifestError(ValueError):
    """A dbt artifact is missing or malformed; the message names it and how to regenerate it."""


@dataclass(frozen=True)
class SourceTable:
    """One declared dbt source table, in Snowflake's stored (upper-case) form."""

    source_name: str
    name: str
    database: str
    schema: str
    identifier: str

    @property
    def key(self) -> str:
        """``SCHEMA.TABLE``, the form drift events use."""
        return f"{self.schema}.{self.identifier}"


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Load and sanity-check a manifest file."""
    location = Path(path)
    fix = "Fix: run `dbt parse` (or `dbt compile`) for the project to regenerate it."
    try:
        data = json.loads(location.read_text())
    except FileNotFoundError:
        raise ManifestError(f"dbt manifest not found at {location}. {fix}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"dbt manifest {location} is not valid JSON ({exc}). {fix}") from None
    return check_manifest(data, str(location))


def check_manifest(data: Any, origin: str = "manifest") -> dict[str, Any]:
    """Ensure ``data`` has the manifest sections we read; return it typed."""
    if not isinstance(data, dict):
        raise ManifestError(
            f"{origin} is not a dbt manifest (top level is {type(data).__name__}, not an object). "
            "Fix: regenerate it with `dbt parse`."
        )
    for section in ("nodes", "sources"):
        if not isinstance(data.get(section), dict):
            raise ManifestError(
                f"{origin} has no '{section}' object; it is not a dbt manifest or is truncated. "
                "Fix: regenerate it with `dbt parse`."
            )
    return data


def source_tables(manifest: dict[str, Any], default_database: str | None = None) -> list[SourceTable]:
    """
    Every source table the project declares, sorted by ``SCHEMA.TABLE``.

    :param manifest: a checked manifest (see :func:`check_manifest`).
    :param default_database: used when a source has no database (some adapters leave it empty).
    """
    tables: list[SourceTable] = []
    for unique_id, source in sorted(manifest["sources"].items()):
        try:
            database = source.get("database") or default_database
            if not database:
                raise ManifestError(f"source {unique_id} has no database and no default was given")
            identifier = source.get("identifier") or source["name"]
            tables.append(
                SourceTable(
                    source_name=str(source["source_name"]),
                    name=str(source["name"]),
                    database=normalize_identifier(str(database)),
                    schema=normalize_identifier(str(source["schema"])),
                    identifier=normalize_identifier(str(identifier)),
                )
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"source {unique_id} in the manifest is malformed (missing {exc})") from None
    return sorted(tables, key=lambda table: (table.database, table.key))


def node(manifest: dict[str, Any], unique_id: str) -> dict[str, Any] | None:
    """A node or source by unique id, or None."""
    found = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id)
    return found if isinstance(found, dict) else None


def upstream(manifest: dict[str, Any], unique_id: str) -> tuple[str, ...]:
    """Direct parents of a node (models, sources, seeds ...), from ``depends_on.nodes``."""
    found = node(manifest, unique_id) or {}
    depends_on = found.get("depends_on") or {}
    return tuple(sorted(str(parent) for parent in depends_on.get("nodes") or ()))


def downstream(manifest: dict[str, Any], unique_id: str) -> tuple[str, ...]:
    """Direct children of a node, from ``child_map`` when present, else by scanning parents."""
    child_map = manifest.get("child_map")
    if isinstance(child_map, dict) and unique_id in child_map:
        return tuple(sorted(str(child) for child in child_map[unique_id]))
    return tuple(
        sorted(
            child_id
            for child_id, child in manifest["nodes"].items()
            if unique_id in ((child.get("depends_on") or {}).get("nodes") or ())
        )
    )
