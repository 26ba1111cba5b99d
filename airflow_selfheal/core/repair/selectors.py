"""The dbt selectors of a repair: what validation, the retry and the post-promotion re-run build.

.. code-block:: python

    failed_selector(incident)  # 'stg_orders+'
    validation_selector(incident, plan.changes, manifest, files)  # 'stg_orders+ fct_orders+'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def failed_selector(incident: Mapping[str, Any]) -> str:
    """
    ``dbt build --select`` for the failed nodes and everything downstream, e.g. ``stg_orders+``.

    A failure outside dbt (the drift check) names no failed node; its selector is exactly the dbt nodes the
    failure blocked (``blocked_nodes``: every dbt task downstream of the failed task), see
    :func:`blocked_selector`.

    :param incident: ``Incident.to_dict()``.
    :return: space-separated ``<name>+`` per failed node (a test's own name selects the test).
    :raises ValueError: when the incident names neither a failed nor a blocked dbt node.
    """
    names = [f"{node['name']}+" for node in incident.get("nodes") or ()]
    if not names:
        blocked = blocked_selector(incident.get("blocked_nodes") or ())
        if blocked:
            return blocked
        raise ValueError(f"incident {incident.get('incident_id')} names no dbt node to select")
    return " ".join(dict.fromkeys(names))


def blocked_selector(nodes: Sequence[Mapping[str, Any]]) -> str:
    """
    ``dbt build --select`` for exactly these nodes: ``source:<source>.<table>`` for a source, the name otherwise.

    :param nodes: ``DbtNodeRef.to_dict()`` items.
    :return: the space-separated selectors, in the given order, without duplicates; empty for no nodes.
    """
    selectors = []
    for node in nodes:
        unique_id = str(node.get("unique_id") or "")
        if node.get("resource_type") == "source" and unique_id.count(".") >= 3:
            # source.<package>.<source>.<table>: the table part may itself hold dots, the others cannot.
            selectors.append("source:" + unique_id.split(".", 2)[2])
        elif node.get("name"):
            selectors.append(str(node["name"]))
    return " ".join(dict.fromkeys(selectors))


_YAML_SECTIONS = {"models": "model", "seeds": "seed", "snapshots": "snapshot"}


def _node_selector(node: Mapping[str, Any]) -> str | None:
    """How ``dbt build --select`` names a node: ``name+`` for what builds, the bare name for a test."""
    resource_type = node.get("resource_type")
    name = node.get("name")
    if not name:
        return None
    if resource_type == "source":
        return f"source:{node.get('source_name')}.{name}+"
    if resource_type == "test":
        return str(name)
    if resource_type in ("model", "seed", "snapshot"):
        return f"{name}+"
    return None


def _changed_yaml_entries(old_text: str | None, new_text: str) -> set[tuple[str, ...]] | None:
    """
    ``("source", source, table)`` and ``(resource_type, name)`` of the YAML entries whose content changed.

    :return: None when either side does not load as a dbt properties file (then every entry counts).
    """
    import yaml

    try:
        old, new = yaml.safe_load(old_text or "") or {}, yaml.safe_load(new_text) or {}
    except yaml.YAMLError:
        return None
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None

    def entries(data: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
        found: dict[tuple[str, ...], Any] = {}
        for source in data.get("sources") or ():
            if not isinstance(source, dict):
                continue
            for table in source.get("tables") or ():
                if isinstance(table, dict):
                    found[("source", str(source.get("name")), str(table.get("name")))] = (
                        {key: value for key, value in source.items() if key != "tables"},
                        table,
                    )
        for section, resource_type in _YAML_SECTIONS.items():
            for item in data.get(section) or ():
                if isinstance(item, dict):
                    found[(resource_type, str(item.get("name")))] = item
        return found

    before, after = entries(old), entries(new)
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def validation_selector(
    incident: Mapping[str, Any],
    changes: Mapping[str, str],
    manifest: Mapping[str, Any],
    project_files: Mapping[str, str] | None = None,
) -> str:
    """
    What validation and the post-promotion prod re-run build, e.g. ``stg_trips+ unique_stg_trips_trip_id``.

    That is the nodes a fix edits, their children, and the failed nodes. A failed data test is fixed in the model it tests, so selecting the test alone would check the fix against
    the old data. Each changed file maps to manifest nodes through ``original_file_path``: a SQL file to its
    model, snapshot, seed or singular test; a YAML file to the models, seeds, snapshots and sources whose
    entries it changes (``patch_path`` / ``original_file_path``), or to every one it declares when the change
    cannot be read entry by entry. Files the manifest does not know (new guard tests) select nothing.

    :param incident: ``Incident.to_dict()``; its ``nodes`` are the failed ones.
    :param changes: the plan's changes, project-relative path to new text.
    :param manifest: the live project's ``manifest.json``.
    :param project_files: the files before the fix, path to text, to tell which YAML entries changed.
    :return: space-separated dbt selectors, edited nodes first, each once.
    :raises ValueError: when neither the fix nor the incident selects anything.
    """
    nodes = {**(manifest.get("sources") or {}), **(manifest.get("nodes") or {})}
    by_file: dict[str, list[Mapping[str, Any]]] = {}
    for node in nodes.values():
        if not hasattr(node, "get"):
            continue
        paths = {str(node.get("original_file_path") or "")}
        if node.get("patch_path"):
            paths.add(str(node["patch_path"]).split("://", 1)[-1])
        for path in paths - {""}:
            by_file.setdefault(path, []).append(node)
    selectors: list[str] = []
    for path in sorted(changes):
        declared = by_file.get(path, [])
        if path.endswith((".yml", ".yaml")):
            changed = _changed_yaml_entries((project_files or {}).get(path), changes[path])
            if changed is not None:
                declared = [
                    node
                    for node in declared
                    if (node.get("resource_type"), node.get("name")) in changed
                    or ("source", node.get("source_name"), node.get("name")) in changed
                ]
            # A generic test declared in the file is a child of the node it tests, which `+` already selects.
            declared = [node for node in declared if node.get("resource_type") != "test"]
        declared = sorted(declared, key=lambda node: (str(node.get("resource_type")), str(node.get("name"))))
        selectors.extend(found for found in map(_node_selector, declared) if found)
    for node in incident.get("nodes") or ():
        known = nodes.get(str(node.get("unique_id"))) or node
        found = _node_selector({**node, **known}) if known else None
        selectors.append(found or f"{node['name']}+")
    if not selectors:
        raise ValueError(
            f"neither the fix nor incident {incident.get('incident_id')} names a dbt node to validate"
        )
    return " ".join(dict.fromkeys(selectors))


def promoted_selector(proposal: Mapping[str, Any] | None, failed: str) -> str:
    """
    What the post-promotion prod re-run builds: the selector the proposal was validated with.

    :param proposal: the validate task's result; records from before the selector was carried have none.
    :param failed: the failed selector, for those older records.
    :return: the selector.
    """
    proposal = proposal or {}
    validation = proposal.get("validation") or {}
    return str(proposal.get("select") or validation.get("select") or failed)
