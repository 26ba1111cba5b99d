"""Relations of a dbt manifest that a repair touches: what a failure broke, what to probe, which views dbt builds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def dbt_view_models(manifest: Mapping[str, Any], relations: Sequence[str]) -> dict[str, str]:
    """
    The dbt models materialized as views among ``relations``.

    :param manifest: the parsed ``manifest.json``.
    :param relations: ``SCHEMA.NAME`` (any case), e.g. the objects a clone lacks.
    :return: ``SCHEMA.NAME`` (upper case) -> the model's name, for ``dbt run --select``.
    """
    wanted = {relation.upper() for relation in relations}
    found: dict[str, str] = {}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model" or (node.get("config") or {}).get("materialized") != "view":
            continue
        relation = f"{str(node.get('schema')).upper()}.{str(node.get('alias') or node['name']).upper()}"
        if relation in wanted:
            found[relation] = str(node["name"])
    return dict(sorted(found.items()))


def failed_relations(incident: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[str]:
    """
    ``SCHEMA.NAME`` of the failed models and everything downstream of them, from the manifest's child map.

    A failed test says that what it tests is broken (a renamed source table fails its source tests before any
    model runs), so the closure also starts from the nodes a failed test depends on.
    """
    failed = [str(n["unique_id"]) for n in incident.get("nodes") or ()]
    parent_map = manifest.get("parent_map") or {}
    tested = [
        parent
        for unique_id in failed
        if unique_id.startswith("test.")
        for parent in parent_map.get(unique_id, ())
    ]
    return model_relations(manifest, downstream_closure(manifest, [*failed, *tested]))


def downstream_closure(manifest: Mapping[str, Any], unique_ids: Sequence[str]) -> list[str]:
    """``unique_ids`` and every node downstream of them (``child_map``), sorted."""
    child_map = manifest.get("child_map") or {}
    seen: set[str] = set()
    pending = list(unique_ids)
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(child_map.get(current, ()))
    return sorted(seen)


def model_relations(manifest: Mapping[str, Any], unique_ids: Sequence[str]) -> list[str]:
    """``SCHEMA.NAME`` (stored form) of the models among ``unique_ids``, for probes and the data diff."""
    relations = []
    nodes = manifest.get("nodes") or {}
    for unique_id in unique_ids:
        node = nodes.get(unique_id)
        if node and node.get("resource_type") == "model":
            relations.append(
                f"{str(node['schema']).upper()}.{str(node.get('alias') or node['name']).upper()}"
            )
    return sorted(dict.fromkeys(relations))


def probe_targets(manifest: Mapping[str, Any], unique_ids: Sequence[str]) -> dict[str, list[str]]:
    """
    What to probe around the failed nodes: their inputs, themselves, and one level downstream.

    :param manifest: the parsed ``manifest.json``.
    :param unique_ids: the failed nodes (a failed test stands for the model it tests).
    :return: ``{"inputs", "outputs", "downstream"}``, each ``SCHEMA.NAME`` relations (sources and models).
    """
    nodes = manifest.get("nodes") or {}
    sources = manifest.get("sources") or {}
    parent_map = manifest.get("parent_map") or {}
    child_map = manifest.get("child_map") or {}

    def relation(unique_id: str) -> str | None:
        node = nodes.get(unique_id) or sources.get(unique_id)
        if not node or node.get("resource_type") not in ("model", "source", "seed", "snapshot"):
            return None
        name = node.get("identifier") if node.get("resource_type") == "source" else node.get("alias")
        return f"{str(node['schema']).upper()}.{str(name or node['name']).upper()}"

    outputs = set()
    for unique_id in unique_ids:
        if (nodes.get(unique_id) or {}).get("resource_type") == "test":
            outputs.update(parent_map.get(unique_id, ()))
        else:
            outputs.add(unique_id)
    inputs = {parent for unique_id in outputs for parent in parent_map.get(unique_id, ())} - outputs
    downstream = {child for unique_id in outputs for child in child_map.get(unique_id, ())} - outputs

    def relations(ids: set[str]) -> list[str]:
        return sorted({found for found in map(relation, ids) if found})

    return {"inputs": relations(inputs), "outputs": relations(outputs), "downstream": relations(downstream)}
