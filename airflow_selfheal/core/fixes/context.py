"""
The fix context: the checked manifest, the sandbox copy of the project and the rules file, as the rules read them.

It also finds a node's files (its SQL, a model's properties file) and where guard tests go: the first of
``test-paths`` in ``dbt_project.yml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from airflow_selfheal.core.fixes.plan import _Escalate
from airflow_selfheal.core.manifest import ManifestError, check_manifest, downstream
from airflow_selfheal.core.rules import RULES_FILE, RulesConfig

GUARD_PREFIX = "selfheal_guard_"
DEFAULT_TEST_PATH = "tests"
# Resource types whose SQL reads a source the way a model does; their files are rewritten with the model.
_SQL_READERS = ("model", "snapshot")


@dataclass(frozen=True)
class _Source:
    unique_id: str
    source_name: str
    name: str
    schema: str
    identifier: str
    yaml_path: str
    loaded_at_field: str | None

    @property
    def label(self) -> str:
        return f"{self.source_name}.{self.name}"

    @property
    def jinja(self) -> str:
        return f"{{{{ source('{self.source_name}', '{self.name}') }}}}"


@dataclass(frozen=True)
class _Context:
    manifest: dict[str, Any]
    files: Mapping[str, str]
    rules: RulesConfig
    incident_id: str
    incident_nodes: tuple[Mapping[str, Any], ...]
    test_path: str

    @classmethod
    def build(
        cls,
        incident: Mapping[str, Any],
        project_files: Mapping[str, str],
        manifest: Mapping[str, Any],
        rules: RulesConfig,
    ) -> _Context:
        try:
            checked = check_manifest(dict(manifest))
        except ManifestError as exc:
            raise _Escalate(str(exc)) from None
        nodes = tuple(item for item in incident.get("nodes") or () if isinstance(item, Mapping))
        return cls(
            manifest=checked,
            files=project_files,
            rules=rules,
            incident_id=str(incident.get("incident_id") or "this incident"),
            incident_nodes=nodes,
            test_path=_test_path(project_files.get("dbt_project.yml")),
        )

    def read(self, path: str) -> str:
        text = self.files.get(path)
        if text is None:
            raise _Escalate(f"{path} is not in the sandbox copy of the project")
        return text

    def node(self, unique_id: str) -> dict[str, Any] | None:
        found = self.manifest["nodes"].get(unique_id) or self.manifest["sources"].get(unique_id)
        return found if isinstance(found, dict) else None

    def children(self, unique_id: str) -> tuple[str, ...]:
        return downstream(self.manifest, unique_id)

    def check_editable(self, node: Mapping[str, Any]) -> None:
        if node.get("resource_type") in _SQL_READERS and self.rules.is_protected(str(node.get("name"))):
            raise _Escalate(
                f"model {node.get('name')} is protected (protected_models in {RULES_FILE}); "
                "a person must change it"
            )

    def find_source(self, table_key: str) -> _Source:
        # ``TABLE``, ``SCHEMA.TABLE`` or ``DATABASE.SCHEMA.TABLE``, matched by its trailing parts.
        wanted = table_key.replace('"', "").casefold().split(".")
        found = []
        for unique_id, source in sorted(self.manifest["sources"].items()):
            if not isinstance(source, dict):
                continue
            identifier = source.get("identifier") or source.get("name")
            key = f"{source.get('database')}.{source.get('schema')}.{identifier}".replace('"', "").casefold()
            if key.split(".")[-len(wanted) :] == wanted:
                found.append((unique_id, source))
        if not found:
            raise _Escalate(f"no dbt source in the manifest is the table {table_key}")
        if len(found) > 1:
            names = ", ".join(unique_id for unique_id, _ in found)
            raise _Escalate(f"several dbt sources match {table_key} ({names}); which one changed is unclear")
        return self.source(found[0][0])

    def source(self, unique_id: str) -> _Source:
        source = self.manifest["sources"].get(unique_id)
        if not isinstance(source, dict):
            raise _Escalate(f"the manifest has no source {unique_id}")
        config: dict[str, Any] = source["config"] if isinstance(source.get("config"), dict) else {}
        loaded_at = source.get("loaded_at_field") or config.get("loaded_at_field")
        return _Source(
            unique_id=unique_id,
            source_name=str(source.get("source_name")),
            name=str(source.get("name")),
            schema=str(source.get("schema")),
            identifier=str(source.get("identifier") or source.get("name")),
            yaml_path=str(source.get("original_file_path")),
            loaded_at_field=None if not loaded_at else str(loaded_at),
        )

    def direct_readers(self, source: _Source) -> list[dict[str, Any]]:
        """Models, snapshots and singular tests that select from the source itself."""
        readers = []
        for child_id in self.children(source.unique_id):
            child = self.node(child_id)
            if child is None:
                continue
            resource_type = child.get("resource_type")
            if resource_type in _SQL_READERS or (resource_type == "test" and not child.get("test_metadata")):
                readers.append(child)
        return readers

    def guard_path(self, *parts: str) -> str:
        slug = re.sub(r"[^a-z0-9]+", "_", "_".join(parts).lower()).strip("_")
        return f"{self.test_path}/{GUARD_PREFIX}{slug}.sql"


def _test_path(project_yaml: str | None) -> str:
    """The first of ``test-paths`` in ``dbt_project.yml``, ``tests`` by default."""
    try:
        data = yaml.safe_load(project_yaml) if project_yaml else None
    except yaml.YAMLError:
        return DEFAULT_TEST_PATH
    paths = data.get("test-paths") if isinstance(data, dict) else None
    if isinstance(paths, list) and paths and isinstance(paths[0], str):
        parts = [part for part in paths[0].strip().split("/") if part not in ("", ".")]
        if parts and ".." not in parts:
            return "/".join(parts)
    return DEFAULT_TEST_PATH


def _path_of(node: Mapping[str, Any]) -> str:
    path = node.get("original_file_path")
    if not path:
        raise _Escalate(f"the manifest gives no file for {node.get('unique_id')}")
    return str(path)


def _yaml_path_of(node: Mapping[str, Any]) -> str | None:
    """A model's properties file, from ``patch_path`` (``project://models/x.yml``)."""
    patch_path = node.get("patch_path")
    if not patch_path:
        return None
    return str(patch_path).split("://", 1)[-1]
