"""The failing node's lineage: the warehouse relations it reads, from dbt's manifest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def lineage_relations(manifest: Mapping[str, Any] | None, unique_ids: Sequence[str]) -> list[str]:
    """
    ``SCHEMA.TABLE`` of every relation the nodes read, directly or through their ancestors (``parent_map``).

    A failed test reads what its model reads; a failed model reads its sources, seeds, snapshots and models.
    Sources are named by their ``identifier``, models by their ``alias``, as the warehouse stores them.

    :param manifest: the parsed ``manifest.json``, or None (then nothing is known).
    :param unique_ids: the failed nodes.
    :return: the relations, sorted; empty without a manifest.
    """
    if not isinstance(manifest, Mapping):
        return []
    nodes = manifest.get("nodes") or {}
    sources = manifest.get("sources") or {}
    parent_map = manifest.get("parent_map") or {}
    seen: set[str] = set()
    pending = [str(unique_id) for unique_id in unique_ids]
    while pending:
        current = pending.pop()
        parents = parent_map.get(current)
        if parents is None:
            found = nodes.get(current) or {}
            parents = (found.get("depends_on") or {}).get("nodes") or () if isinstance(found, Mapping) else ()
        for parent in parents:
            if parent not in seen:
                seen.add(str(parent))
                pending.append(str(parent))
    relations = set()
    for unique_id in seen:
        node = nodes.get(unique_id) or sources.get(unique_id)
        if not isinstance(node, Mapping) or not node.get("schema"):
            continue
        if node.get("resource_type") == "source":
            name = node.get("identifier") or node.get("name")
        elif node.get("resource_type") in ("model", "seed", "snapshot"):
            name = node.get("alias") or node.get("name")
        else:
            continue
        relations.add(f"{node['schema']}.{name}".upper().replace('"', ""))
    return sorted(relations)
