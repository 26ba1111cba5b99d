"""
What keeps a validation build inside its clone: sources pointed at the clone, and the parsed project checked.

Sources are read only, but a source whose ``database`` is set explicitly to production (``database: DEMO`` in the
demo's ``_sources.yml``) would make the clone build read production data. :func:`rewrite_source_databases`
points the attempt's *copy* of that YAML at the clone; :func:`isolation_problems` then checks the parsed project:
every model, seed, snapshot and test must resolve to the clone, and no hook may name production. Pure functions,
unit-tested; the dbt child (:mod:`airflow_selfheal.hooks.dbt.child`) calls them between parsing and building.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml

from airflow_selfheal.core.clone_sql import scan_prod_references
from airflow_selfheal.core.identifiers import normalize_identifier

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

#: Resource types that create or write a relation when built (tests write when ``store_failures`` is on).
WRITING_TYPES = frozenset({"model", "seed", "snapshot", "test"})
_EXCLUDED_FROM_SCAN = frozenset({"target", "dbt_packages", "logs"})


def same_database(value: Any, database: str) -> bool:
    """
    Whether a database as written in YAML or the manifest is ``database``.

    :param value: the value as written (quoted or not), or anything else (never the same).
    :param database: stored form.
    :return: True when both name the same database.
    """
    if not isinstance(value, str) or not value.strip():
        return False
    try:
        return normalize_identifier(value) == database or value.strip().upper() == database.upper()
    except ValueError:
        return False


def rewrite_source_databases(
    project_dir: Path,
    *,
    prod_database: str,
    clone_database: str,
    only: Iterable[tuple[str, str]] | None = None,
) -> list[dict[str, str]]:
    """
    Point sources that read production at the clone, in a throwaway copy of a project.

    Without ``only``, every source whose ``database`` is written literally as the production database is
    rewritten. With ``only``, exactly the given ``(file, source name)`` pairs are (used after parsing, for values
    dbt rendered from Jinja). The YAML is re-dumped, so comments are lost: never use this on the sandbox or the
    live project.

    :param project_dir: the copy.
    :param prod_database: stored form.
    :param clone_database: stored form.
    :param only: project-relative YAML path and source name pairs.
    :return: one ``{"file", "source", "from", "to"}`` per rewrite.
    """
    wanted = None if only is None else set(only)
    rewrites: list[dict[str, str]] = []
    for location in sorted(project_dir.rglob("*")):
        relative = location.relative_to(project_dir)
        if location.suffix not in (".yml", ".yaml") or not location.is_file():
            continue
        if relative.parts[0] in _EXCLUDED_FROM_SCAN or ".git" in relative.parts:
            continue
        text = location.read_text(encoding="utf-8")
        if "sources" not in text:
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue  # dbt reports a broken YAML file itself, with its line
        if not isinstance(data, dict) or not isinstance(data.get("sources"), list):
            continue
        changed = False
        for source in data["sources"]:
            if not isinstance(source, dict):
                continue
            name = str(source.get("name", ""))
            current = source.get("database")
            if wanted is None:
                hit = same_database(current, prod_database)
            else:
                hit = (relative.as_posix(), name) in wanted
            if hit:
                source["database"] = clone_database
                rewrites.append(
                    {"file": relative.as_posix(), "source": name, "from": str(current), "to": clone_database}
                )
                changed = True
        if changed:
            location.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return rewrites


def isolation_problems(summary: Mapping[str, Any], *, clone_database: str, prod_database: str) -> list[str]:
    """
    What in a parsed project would read production sources or write outside the clone.

    :param summary: ``{"sources": [...], "nodes": [...]}`` as made from the manifest in the child: sources with
        ``unique_id`` and ``database``; nodes with ``unique_id``, ``resource_type``, ``database``, ``materialized``
        and ``hooks`` (the SQL of their pre/post hooks, or of the project hook an ``operation`` node is).
    :param clone_database: stored form.
    :param prod_database: stored form.
    :return: one sentence per problem; empty when the build is isolated.
    """
    problems = []
    for source in summary.get("sources", ()):
        if same_database(source.get("database"), prod_database):
            problems.append(f"{source['unique_id']} still reads the production database {prod_database}")
    for node in summary.get("nodes", ()):
        resource_type = node.get("resource_type")
        writes = resource_type in WRITING_TYPES and node.get("materialized") != "ephemeral"
        if writes and not same_database(node.get("database"), clone_database):
            problems.append(f"{node['unique_id']} would build into {node.get('database')!r}, not the clone")
        for sql in node.get("hooks", ()):
            references = scan_prod_references(str(sql), prod_database).references
            if references:
                problems.append(f"{node['unique_id']} has a hook naming production: {', '.join(references)}")
    return problems
