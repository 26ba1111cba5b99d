"""The repair loop's steps as plain functions: each takes plain inputs and returns a JSON-serialisable dict.

:func:`~airflow_selfheal.dags.repair.build_repair_dag` wires them into tasks. Nothing here needs a scheduler, so
the decisions (which branch, when to escalate, what the approval body says, what the outcome was) are unit-tested
directly. Anything a later task needs travels through XCom or the artifacts root, never a worker's disk: the
validate task re-creates the sandbox from the live project and the proposed plan, and promotion reads the files
from the published proposal.

.. code-block:: python

    config = RepairConfig(project_dir="/opt/dbt/shop", snowflake_conn_id="snowflake_prod", prod_database="PROD")
    incident = load_incident(dag_run.conf)
    decision = triage_step(incident)
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from airflow_selfheal.core.pages.render import Page
    from airflow_selfheal.hooks.artifacts import ArtifactStore

log = logging.getLogger(__name__)

BRANCH_RETRY = "retry"
BRANCH_ESCALATE = "escalate"
BRANCH_REPAIR = "clone"
PLAN_FILE = "plan.json"
DIFF_LIMIT = 20_000
LOG_LIMIT = 4_000
#: The retry's first pause between two ``select 1`` probes of an unreachable warehouse; it doubles up to the max.
WAREHOUSE_PROBE_FIRST_DELAY = 2.0
WAREHOUSE_PROBE_MAX_DELAY = 60.0


@dataclass(frozen=True)
class RepairConfig:
    """
    How the repair DAG reaches the dbt project, the warehouse, git and on-call.

    .. code-block:: python

        config = RepairConfig(project_dir="/opt/dbt/shop", snowflake_conn_id="snowflake_prod", prod_database="PROD")
        dag = build_repair_dag(config=config)

    :param project_dir: the live dbt project, a git working tree on the deploy branch (only read until promotion).
    :param snowflake_conn_id: the production Snowflake connection.
    :param prod_database: the production database (cloned, never written before approval).
    :param deploy_branch: the branch production deploys from.
    :param promote_mode: ``merge`` (merge into ``deploy_branch``) or ``branch_only`` (push a branch for a PR).
    :param slack_conn_id: a ``slackwebhook`` connection, or None.
    :param pagerduty_conn_id: a ``pagerduty_events`` connection, or None.
    :param approval_timeout: how long the approval waits; a timeout escalates and applies nothing.
    :param assigned_users: who may approve (``{"id": ..., "name": ...}`` dicts), or None for anyone.
    :param max_attempts: validation attempts; the same validation error twice escalates sooner.
    :param manifest_path: the project's ``manifest.json``; default ``<project_dir>/target/manifest.json``.
    :param sandbox_root: local folder for sandboxes, each at ``<sandbox_root>/<run>-try<n>/.selfheal/runs/<incident>``;
        default ``<tmp>/selfheal``.
    :param dbt_timeout: seconds allowed to each dbt build.
    :param git_remote: the remote promotion pushes to, or None for a repository without one.
    :param baseline_name: the drift baseline of the project's sources (as ``SchemaDriftCheckOperator``'s); after a
        drift-driven fix is promoted and re-run green, the new schemas become the accepted baseline. None skips it.
    :param base_url: the Airflow UI's address for the approval link; default ``[api] base_url``.
    :param clone_ttl: every run's cleanup also drops selfheal clones older than this (orphans of killed runs).
    :param clone_schemas: clone only these schemas of ``prod_database`` (default: the whole database).
    :param clone_at_failure: pin the clone ``AT`` the failure time (Snowflake time travel), so validation sees
        the data the failed run saw; where the warehouse refuses it, the clone holds the current state and the
        clone's ``at_ignored_reason`` says why.
    :param warehouse_wait: how long a retry waits for the warehouse to answer ``select 1`` before it re-runs
        anything (probing with exponential backoff from :data:`WAREHOUSE_PROBE_FIRST_DELAY` seconds); when it
        never answers, the retry fails (and pages) saying how long it waited. ``timedelta(0)`` probes once.
    """

    project_dir: str
    snowflake_conn_id: str
    prod_database: str
    deploy_branch: str = "main"
    promote_mode: str = "merge"
    slack_conn_id: str | None = None
    pagerduty_conn_id: str | None = None
    approval_timeout: timedelta = timedelta(hours=4)
    assigned_users: Sequence[Mapping[str, str]] | None = None
    max_attempts: int = 2
    manifest_path: str | None = None
    sandbox_root: str | None = None
    dbt_timeout: float = 3600.0
    git_remote: str | None = "origin"
    baseline_name: str | None = None
    base_url: str | None = None
    clone_ttl: timedelta = timedelta(hours=24)
    clone_schemas: Sequence[str] | None = None
    clone_at_failure: bool = False
    warehouse_wait: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.promote_mode not in ("merge", "branch_only"):
            raise ValueError(f"promote_mode must be 'merge' or 'branch_only', got {self.promote_mode!r}")
        if not self.prod_database:
            raise ValueError("prod_database must name the production database")
        if self.approval_timeout <= timedelta(0):
            raise ValueError("approval_timeout must be positive")
        if not isinstance(self.warehouse_wait, timedelta) or self.warehouse_wait < timedelta(0):
            raise ValueError(
                f"warehouse_wait must be a timedelta of zero or more (e.g. timedelta(minutes=10)), "
                f"got {self.warehouse_wait!r}"
            )

    @property
    def manifest(self) -> Path:
        """The manifest file."""
        return Path(self.manifest_path or Path(self.project_dir) / "target" / "manifest.json")

    @property
    def sandboxes(self) -> Path:
        """The local folder holding ``.selfheal/runs``."""
        return Path(self.sandbox_root or Path(tempfile.gettempdir()) / "selfheal")


# ---------------------------------------------------------------------------------------------------------------
# Incident and triage
# ---------------------------------------------------------------------------------------------------------------


def load_incident(conf: Mapping[str, Any], store: ArtifactStore | None = None) -> dict[str, Any]:
    """
    The incident of a repair run, from its conf (``repair_conf``) or, when it was too big, from ``incident_path``.

    :param conf: the dag run's conf.
    :param store: the artifacts store; default the configured one (read only when the conf lacks the incident).
    :return: ``Incident.to_dict()``, checked by ``Incident.from_dict``.
    :raises ValueError: when the conf names no incident, or names another one than it carries.
    """
    from airflow_selfheal.core.incident import Incident

    data = conf.get("incident")
    if not data:
        path = conf.get("incident_path")
        if not path:
            raise ValueError("the repair run's conf has neither 'incident' nor 'incident_path'")
        data = _read_incident_path(str(path), store)
    incident = Incident.from_dict(data)
    for key in ("incident_id", "fingerprint"):
        if conf.get(key) and conf[key] != getattr(incident, key):
            raise ValueError(
                f"conf {key} {conf[key]!r} does not match the incident's {getattr(incident, key)!r}"
            )
    return incident.to_dict()


def _read_incident_path(path: str, store: ArtifactStore | None) -> Any:
    if "://" in path or path.startswith("/"):
        from airflow.sdk import ObjectStoragePath

        return json.loads(ObjectStoragePath(path if "://" in path else f"file://{path}").read_text())
    if store is None:
        from airflow_selfheal.hooks.artifacts import ArtifactStore

        store = ArtifactStore()
    return store.read_json(path)


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


def triage_step(incident: Mapping[str, Any]) -> dict[str, Any]:
    """
    The triage of the incident (the callback's, or a fresh :func:`~airflow_selfheal.core.triage.classify`).

    A failure outside dbt (no failed node) cannot be repaired by a code change: a transient one that blocked
    dbt nodes is retried (the blocked nodes are rebuilt once the warehouse answers), anything else escalates,
    with ``action`` set to ``escalate`` (the triage keeps what it recommended).

    :param incident: ``Incident.to_dict()``.
    :return: ``{"triage": Triage dict, "action": retry|repair|escalate, "branch": the task to follow,
        "select": the failed selector}``.
    """
    from airflow_selfheal.core.triage import Triage, classify

    recorded = incident.get("triage")
    if recorded:
        triage = Triage.from_dict(recorded).to_dict()
    else:
        nodes = incident.get("nodes") or ()
        first = nodes[0] if nodes else {}
        triage = classify(
            str(incident.get("error") or ""), resource_type=first.get("resource_type")
        ).to_dict()
    action = str(triage.get("action") or "escalate")
    branch = {"retry": BRANCH_RETRY, "repair": BRANCH_REPAIR}.get(action, BRANCH_ESCALATE)
    try:
        select = failed_selector(incident)
    except ValueError:
        select, branch = "", BRANCH_ESCALATE
    if not incident.get("nodes") and branch == BRANCH_REPAIR:
        action, branch = "escalate", BRANCH_ESCALATE
    return {"triage": triage, "action": action, "branch": branch, "select": select}


class WarehouseUnreachableError(RuntimeError):
    """The warehouse did not answer within the retry's bound; the message says for how long it was probed."""


def wait_for_warehouse(
    conn_id: str,
    timeout: timedelta,
    *,
    first_delay: float = WAREHOUSE_PROBE_FIRST_DELAY,
    max_delay: float = WAREHOUSE_PROBE_MAX_DELAY,
    probe: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> dict[str, Any]:
    """
    Probe the warehouse with ``select 1`` until it answers, pausing ``first_delay`` seconds, doubled each time.

    It probes at least once, and no new probe starts after ``timeout``; one probe can outlast it by the
    connector's own connect timeout.

    :param conn_id: the Snowflake connection, probed through ``SelfhealSnowflakeHook``.
    :param timeout: how long to keep probing.
    :param probe: the probe (default: ``select 1`` on a fresh hook, so a fixed connection is picked up).
    :return: ``{"answered": True, "attempts", "waited_seconds"}``.
    :raises WarehouseUnreachableError: when no probe succeeded within ``timeout``; the message names the
        connection, how long it waited, the attempts and the last error (redacted).
    """
    from airflow_selfheal.core.redaction import redact

    if probe is None:

        def probe() -> Any:
            from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

            return SelfhealSnowflakeHook(snowflake_conn_id=conn_id).get_first("select 1")

    started = clock()
    delay = first_delay
    attempts = 0
    while True:
        attempts += 1
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - every failure to answer is what is waited out
            last_error = redact(f"{type(exc).__name__}: {exc}")[:LOG_LIMIT]
            log.warning("The warehouse (connection %s) does not answer yet: %s", conn_id, last_error)
        else:
            waited = round(clock() - started, 1)
            log.info(
                "The warehouse (connection %s) answered after %s attempt(s), %ss", conn_id, attempts, waited
            )
            return {"answered": True, "attempts": attempts, "waited_seconds": waited}
        elapsed = clock() - started
        if elapsed >= timeout.total_seconds():
            raise WarehouseUnreachableError(
                f"the warehouse (connection {conn_id!r}) did not answer `select 1` within {timeout} "
                f"(waited {elapsed:.1f}s, {attempts} attempt(s)); last error: {last_error}. Nothing was re-run. "
                "Fix the warehouse or the network (or the connection), then clear the retry task, "
                "or raise RepairConfig.warehouse_wait for longer outages."
            )
        # The last pause is cut short so that one probe happens at the bound itself.
        sleep(min(delay, timeout.total_seconds() - elapsed))
        delay = min(delay * 2, max_delay)


# ---------------------------------------------------------------------------------------------------------------
# Clone, propose, validate
# ---------------------------------------------------------------------------------------------------------------


def clone_step(
    config: RepairConfig, incident: Mapping[str, Any], attempt_key: str = "manual"
) -> dict[str, Any]:
    """
    A verified zero-copy clone of production for the incident.

    Views the warehouse's text cannot reproduce in the clone (a dialect round-trip it does not survive) but that
    are dbt view models are built by dbt itself in the clone, with the validation profile that refuses prod, and
    the clone is verified again. Whatever is still missing makes the clone unusable.

    :param attempt_key: names the sandbox dbt runs in (one per run and try).
    :return: ``CloneResult.to_dict()`` plus ``tolerated_missing`` and ``dbt_built_views``.
    :raises RuntimeError: when the clone is incomplete or a view in it still reads production (it is dropped).
    """
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    hook = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id)
    at = None
    if config.clone_at_failure and incident.get("failed_at"):
        from datetime import datetime, timezone

        at = datetime.fromisoformat(str(incident["failed_at"]))
        at = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    schemas = list(config.clone_schemas) if config.clone_schemas else None
    clone = hook.clone_for_incident(
        config.prod_database, str(incident["incident_id"]), schemas=schemas, at=at
    )
    try:
        manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
        rebuilt = set(failed_relations(config, incident, manifest))
        # A view the failure itself broke (the failed model and its downstream) cannot be re-created in the clone
        # either; validation rebuilds exactly those, so only other gaps make the clone unusable.
        blocking = [item for item in clone.missing if str(item[0]).upper() not in rebuilt]
        views = dbt_view_models(manifest, [str(name) for name, _ in blocking])
        built: list[str] = []
        if views:
            built = _build_views_in_clone(config, incident, clone.clone_database, views, attempt_key)
            clone = hook.verify_clone(clone, schemas=schemas)
            blocking = [item for item in clone.missing if str(item[0]).upper() not in rebuilt]
    except Exception:
        hook.drop_clone(clone.clone_database)
        raise
    if blocking or clone.prod_references:
        hook.drop_clone(clone.clone_database)
        raise RuntimeError(
            f"clone {clone.clone_database} of {config.prod_database} is not complete: missing {blocking}, "
            f"views reading prod {clone.prod_references}"
        )
    result = clone.to_dict()
    result["tolerated_missing"] = [list(item) for item in clone.missing if str(item[0]).upper() in rebuilt]
    result["dbt_built_views"] = built
    return result


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


def _build_views_in_clone(
    config: RepairConfig,
    incident: Mapping[str, Any],
    clone_database: str,
    views: Mapping[str, str],
    attempt_key: str,
) -> list[str]:
    """``dbt run`` the view models in the clone from an unchanged sandbox copy of the project."""
    import shutil

    from airflow_selfheal.hooks.dbt import DbtValidationHook
    from airflow_selfheal.hooks.sandbox import Sandbox

    root = config.sandboxes / f"{attempt_key}-clone"
    sandbox = Sandbox.create(Path(config.project_dir), str(incident["incident_id"]), root=root, replace=True)
    try:
        result = DbtValidationHook(timeout=config.dbt_timeout).build(
            sandbox.project_dir,
            select=" ".join(sorted(set(views.values()))),
            target_database=clone_database,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
            command="run",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if result.error:
        log.warning("dbt could not build the clone's views %s: %s", sorted(views), result.error)
    return sorted(node.unique_id for node in result.nodes if node.status == "success")


def failed_relations(
    config: RepairConfig, incident: Mapping[str, Any], manifest: Mapping[str, Any] | None = None
) -> list[str]:
    """
    ``SCHEMA.NAME`` of the failed models and everything downstream of them, from the manifest's child map.

    A failed test says that what it tests is broken (a renamed source table fails its source tests before any
    model runs), so the closure also starts from the nodes a failed test depends on.
    """
    if manifest is None:
        manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
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


def read_project_files(project_dir: Path) -> dict[str, str]:
    """The project's SQL and YAML files (and ``dbt_project.yml``), path relative to the project -> text."""
    files: dict[str, str] = {}
    skipped = {"target", "logs", "dbt_packages"}
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if not path.is_file() or relative.parts[0] in skipped or ".git" in relative.parts:
            continue
        if path.suffix in (".sql", ".yml", ".yaml", ".md"):
            files[relative.as_posix()] = path.read_text(encoding="utf-8")
    return files


def propose_step(
    config: RepairConfig, incident: Mapping[str, Any], triage: Mapping[str, Any], store: ArtifactStore
) -> dict[str, Any]:
    """
    The deterministic rule's plan for the incident, stored on the artifacts root for the validate task.

    :return: ``FixPlan.to_dict()`` plus ``plan_path`` and ``select`` (:func:`validation_selector`), or
        ``Escalation.to_dict()``.
    """
    from airflow_selfheal.core.fixes import propose_fix
    from airflow_selfheal.core.rules import RULES_FILE, load_rules

    project = Path(config.project_dir)
    files = read_project_files(project)
    rules_path = project / RULES_FILE
    rules = load_rules(rules_path.read_text(encoding="utf-8") if rules_path.is_file() else None)
    manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
    outcome = propose_fix(
        triage=triage, incident=incident, project_files=files, manifest=manifest, rules=rules
    ).to_dict()
    if outcome["kind"] == "fix_plan":
        outcome["allowed_paths"] = list(rules.allowed_paths)
        outcome["select"] = validation_selector(incident, outcome["changes"], manifest, files)
        plan_path = f"incidents/{incident['incident_id']}/{PLAN_FILE}"
        store.path(plan_path).parent.mkdir(parents=True, exist_ok=True)
        store.path(plan_path).write_text(json.dumps(outcome, indent=2, sort_keys=True))
        outcome["plan_path"] = plan_path
    return outcome


def attempt_decision(signatures: Sequence[str], success: bool, max_attempts: int) -> str:
    """
    What to do after a validation attempt.

    :param signatures: the error signatures of the failed attempts so far, oldest first.
    :param success: whether the last attempt passed.
    :param max_attempts: the attempt limit.
    :return: ``proposal`` (passed), ``escalate_same_error`` (the last two failures are the same),
        ``escalate_attempts`` (the limit is reached) or ``retry``.
    """
    if success:
        return "proposal"
    if len(signatures) >= 2 and signatures[-1] == signatures[-2]:
        return "escalate_same_error"
    if len(signatures) >= max_attempts:
        return "escalate_attempts"
    return "retry"


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


def probe_step(
    config: RepairConfig, manifest: Mapping[str, Any], incident: Mapping[str, Any], clone_database: str
) -> dict[str, Any]:
    """
    Bounded read-only probes in the clone: columns, row count, 20 sampled rows and null counts per relation.

    Each relation's failure is recorded in its ``errors``, never raised: probes are evidence, not a gate.
    """
    from airflow_selfheal.hooks.probes import probe_relations
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

    targets = probe_targets(manifest, [str(node["unique_id"]) for node in incident.get("nodes") or ()])
    wanted = sorted({relation for group in targets.values() for relation in group})
    probed = probe_relations(
        SelfhealSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id), clone_database, wanted
    )
    return {**targets, **probed}


def validate_step(
    config: RepairConfig,
    incident: Mapping[str, Any],
    plan: Mapping[str, Any],
    clone_database: str,
    select: str,
    store: ArtifactStore,
    attempt_key: str = "manual",
) -> dict[str, Any]:
    """
    Re-create the sandbox from the live project and the plan, and ``dbt build`` it in the clone.

    The build selects the plan's ``select`` (:func:`validation_selector`: the edited models, their children and
    the failed nodes), or ``select`` for a plan recorded without one.

    The evidence is published under ``incidents/<id>/proposals/<attempt_key>/<files hash>``: published files
    are never overwritten, so each repair run (and each retry of this task) has its own ``attempt_key``.

    :return: ``{"status": "proposal", ...evidence...}`` or ``{"status": "escalate", "reason": ...}``.
    """
    from airflow_selfheal.core.fixes import FixPlan
    from airflow_selfheal.hooks.dbt import DbtValidationHook
    from airflow_selfheal.hooks.probes import data_diff
    from airflow_selfheal.hooks.sandbox import Sandbox
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    incident_id = str(incident["incident_id"])
    fix = FixPlan.from_dict(plan)
    # The plan's selector rebuilds the edited models; a plan recorded before it was carried has only ``select``.
    select = str(plan.get("select") or select)
    # One sandbox per run and attempt: a concurrent run elsewhere (another deployment, a zombie) never shares it.
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", attempt_key) or ".." in attempt_key:
        raise ValueError(
            f"attempt_key {attempt_key!r} must be letters, digits, '.', '_' or '-', without '..'"
        )
    root = config.sandboxes / attempt_key
    sandbox = Sandbox.create(Path(config.project_dir), incident_id, root=root, replace=True)
    sandbox.write_files(fix.changes, allowed_paths=list(plan.get("allowed_paths") or ["models/**"]))
    validator = DbtValidationHook(timeout=config.dbt_timeout)
    signatures: list[str] = []
    attempts: list[dict[str, Any]] = []
    while True:
        result = validator.build(
            sandbox.project_dir,
            select=select,
            target_database=clone_database,
            snowflake_conn_id=config.snowflake_conn_id,
            prod_database=config.prod_database,
        )
        attempts.append({"attempt": result.attempt, "success": result.success, "error": result.error})
        if not result.success:
            signatures.append(result.error_signature)
        decision = attempt_decision(
            signatures, result.success and result.is_current(sandbox.files_hash()), config.max_attempts
        )
        if decision != "retry":
            break
    if decision != "proposal":
        reason = {
            "escalate_same_error": "the same validation error twice",
            "escalate_attempts": f"validation failed {len(signatures)} times (limit {config.max_attempts})",
        }[decision]
        failures = "; ".join(f"{node.unique_id}: {node.message}" for node in result.failures)
        return {
            "status": "escalate",
            "reason": f"{reason}: {result.error or failures}"[:LOG_LIMIT],
            "attempts": attempts,
            "logs_excerpt": result.logs_excerpt[-LOG_LIMIT:],
        }
    manifest = json.loads(config.manifest.read_text(encoding="utf-8"))
    relations = model_relations(manifest, [node.unique_id for node in result.nodes])
    diff = data_diff(
        SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id),
        relations,
        clone_database,
        config.prod_database,
    )
    sandbox.record_evidence("data_diff", diff)
    sandbox.record_evidence("probes", probe_step(config, manifest, incident, clone_database))
    sandbox.record_evidence("plan", dict(plan))
    prefix = f"incidents/{incident_id}/proposals/{attempt_key}/{result.files_hash[:12]}"
    sandbox.publish(store, prefix)
    return {
        "status": "proposal",
        "fix_type": fix.fix_type,
        "tier": fix.tier,
        "rationale": fix.rationale,
        "changed_files": sandbox.changed_files,
        "files_hash": result.files_hash,
        "select": result.select,
        "diff": sandbox.diff()[:DIFF_LIMIT],
        "validation": {
            "attempt": result.attempt,
            "select": result.select,
            "elapsed_seconds": round(result.elapsed_seconds, 1),
            "nodes": [{"unique_id": n.unique_id, "status": n.status} for n in result.nodes],
            "source_rewrites": [dict(item) for item in result.source_rewrites],
        },
        "attempts": attempts,
        "data_diff": diff,
        "evidence_prefix": prefix,
    }


# ---------------------------------------------------------------------------------------------------------------
# Page and approval
# ---------------------------------------------------------------------------------------------------------------


def approval_body(incident: Mapping[str, Any], triage: Mapping[str, Any], proposal: Mapping[str, Any]) -> str:
    """
    The approval's markdown: diagnosis, diff, validation and data diff.

    :return: markdown for ``ApprovalOperator(body=...)``.
    """
    root_cause = triage.get("root_cause") or {}
    lines = [
        "### Diagnosis",
        f"- Failure: `{triage.get('failure_class')}` in pipeline `{incident.get('pipeline')}`, "
        f"task `{incident.get('task_id')}`",
        f"- {triage.get('summary') or ''}",
    ]
    if root_cause:
        lines.append(f"- Root cause: {root_cause.get('message')}")
    lines += [
        f"- Fix: `{proposal.get('fix_type')}` (tier **{proposal.get('tier')}**)",
        "",
        str(proposal.get("rationale") or ""),
        "",
        "### Diff",
        "```diff",
        str(proposal.get("diff") or "").rstrip(),
        "```",
        "### Validation (in the clone)",
    ]
    validation = proposal.get("validation") or {}
    lines.append(
        f"`dbt build --select {validation.get('select')}`: passed, {validation.get('attempt')}, "
        f"{validation.get('elapsed_seconds')}s"
    )
    lines += [f"- `{node['unique_id']}`: {node['status']}" for node in validation.get("nodes", [])]
    lines += [
        "",
        "### Data diff (clone vs prod)",
        "| relation | status | clone rows | prod rows |",
        "|---|---|---|---|",
    ]
    for name, item in sorted(((proposal.get("data_diff") or {}).get("relations") or {}).items()):
        clone_rows = (item.get("clone") or {}).get("row_count")
        prod_rows = (item.get("prod") or {}).get("row_count")
        lines.append(f"| {name} | {item.get('status')} | {clone_rows} | {prod_rows} |")
    lines += ["", f"Incident `{incident.get('incident_id')}`; nothing reaches production before approval."]
    return "\n".join(lines)


def proposal_page(
    incident: Mapping[str, Any], triage: Mapping[str, Any], proposal: Mapping[str, Any], link: str | None
) -> Page:
    """The page asking on-call to approve: dedup key the fingerprint, the approval link, the diff."""
    from airflow_selfheal.core.pages.render import Page

    nodes = incident.get("nodes") or [{}]
    return Page(
        title=f"selfheal fix ready for approval: {nodes[0].get('name')} ({triage.get('failure_class')})",
        severity="error",
        dedup_key=str(incident["fingerprint"]),
        sections=(
            ("Diagnosis", str(triage.get("summary") or "")),
            (
                "Proposal",
                f"{proposal.get('fix_type')} ({proposal.get('tier')} tier)\n{proposal.get('rationale')}",
            ),
            ("Diff", str(proposal.get("diff") or "")),
        ),
        details={
            "incident_id": incident["incident_id"],
            "fix_type": proposal.get("fix_type"),
            "tier": proposal.get("tier"),
            "changed_files": list(proposal.get("changed_files") or ()),
            "approval_link": link,
        },
        links=(("Approve in Airflow", link),) if link else (),
        component=str(nodes[0].get("name")),
        group=str(incident.get("pipeline")),
    )


#: What each watched step was doing, for the page that says it failed.
STEP_DOING = {
    BRANCH_RETRY: "re-running the failed selector in prod",
    BRANCH_REPAIR: "cloning prod",
    "propose": "proposing a fix",
    "validate": "validating the fix in the clone",
    "page": "paging on-call with the proposal",
    "promote": "promoting the approved fix",
    "rerun": "re-running the promoted fix in prod",
}


def failure_reason(step: str, error: str | None) -> str:
    """
    Why a crashed repair run pages: the step, what it was doing and its error (redacted).

    :param step: the task that failed, e.g. ``clone``.
    :param error: its error, or None when the task died without reporting one (killed, out of memory).
    :return: e.g. ``the repair run failed at clone (cloning prod): RuntimeError: clone … is not complete``.
    """
    from airflow_selfheal.core.redaction import redact

    doing = STEP_DOING.get(step)
    where = f"{step} ({doing})" if doing else step
    detail = redact(error) if error else "the task reported no error (killed?); see its log in Airflow"
    return f"the repair run failed at {where}: {detail}"[:LOG_LIMIT]


def escalation_page(
    incident: Mapping[str, Any], reason: str, logs: str = "", failed_step: str | None = None
) -> Page:
    """
    The page for a person to take over: the reason and the failure's logs.

    :param failed_step: the repair step that crashed, named in the title, or None for a decided escalation.
    """
    from airflow_selfheal.core.pages.render import Page

    title = f"selfheal escalation: {incident.get('pipeline')} needs a person"
    if failed_step:
        title += f" (repair step {failed_step} failed)"
    details: dict[str, Any] = {"incident_id": incident["incident_id"], "reason": reason}
    if failed_step:
        details["failed_step"] = failed_step
    sections = [("Why", reason), ("Error", str(incident.get("error") or "")), ("Logs", logs)]
    sections += [(heading, body) for heading, body in escalation_facts(incident) if body]
    return Page(
        title=title,
        severity="critical",
        dedup_key=str(incident["fingerprint"]),
        sections=tuple(sections),
        details=details,
        group=str(incident.get("pipeline")),
    )


def escalation_facts(incident: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Extra sections an escalation carries for incidents outside a dbt model: the task, what it blocked."""
    facts: list[tuple[str, str]] = []
    nodes = incident.get("nodes") or ()
    if not nodes and incident.get("task_id"):
        facts.append(("Failed task", str(incident.get("task_id"))))
    blocked = list(incident.get("blocked_nodes") or ())
    if blocked:
        facts.append(("Blocked dbt nodes", ", ".join(str(node.get("unique_id")) for node in blocked)))
    freshness = incident.get("freshness") or {}
    if freshness:
        facts.append(("Source freshness", freshness_text(freshness)))
    return facts


def freshness_text(freshness: Mapping[str, Any]) -> str:
    """One line per fact of a freshness failure: source, loaded_at field, max loaded_at, age and threshold."""
    lines = [f"source: {freshness.get('unique_id') or freshness.get('source')}"]
    for key, label in (
        ("loaded_at_field", "loaded_at field"),
        ("max_loaded_at", "max loaded_at"),
        ("age", "age"),
        ("threshold", "threshold"),
        ("status", "status"),
    ):
        if freshness.get(key) not in (None, ""):
            lines.append(f"{label}: {freshness[key]}")
    return "\n".join(lines)


def deliver_page(config: RepairConfig, page: Page, store: ArtifactStore | None, scope: str) -> dict[str, Any]:
    """Send a page; a delivery failure is reported, never raised (it must not block approval)."""
    from airflow_selfheal.notifications.delivery import deliver

    return deliver(
        page,
        slack_conn_id=config.slack_conn_id,
        pagerduty_conn_id=config.pagerduty_conn_id,
        store=store,
        scope=scope,
    ).to_dict()


def resolve_page(config: RepairConfig, incident: Mapping[str, Any]) -> str:
    """Resolve the PagerDuty incident of the fingerprint; ``skipped`` without a connection."""
    from airflow_selfheal.core.pages.render import Page
    from airflow_selfheal.notifications.delivery import send_pagerduty

    if not config.pagerduty_conn_id:
        return "skipped"
    page = Page(title="selfheal: resolved", severity="info", dedup_key=str(incident["fingerprint"]))
    try:
        send_pagerduty(page, config.pagerduty_conn_id, action="resolve")
    except Exception as exc:  # noqa: BLE001 - the fix is promoted; a failed resolve must not fail the run
        log.warning("Could not resolve the page for %s: %s", incident["incident_id"], exc)
        return f"failed: {type(exc).__name__}"
    return "resolved"


def approver(response: Mapping[str, Any] | None) -> tuple[bool, str]:
    """
    Whether the approval task's response approves, and who answered.

    :param response: the ApprovalOperator's XCom (``chosen_options``, ``responded_by_user``), or None.
    :return: ``(approved, "Name <email>")`` for the commit's author.
    """
    if not response:
        return False, "unknown <selfheal@localhost>"
    user = response.get("responded_by_user") or {}
    name = str(user.get("name") or user.get("id") or "unknown").replace("<", "").replace(">", "").strip()
    ident = "".join(ch for ch in str(user.get("id") or name) if ch.isalnum() or ch in "._-") or "unknown"
    return list(response.get("chosen_options") or []) == [
        "Approve"
    ], f"{name or 'unknown'} <{ident}@selfheal>"


# ---------------------------------------------------------------------------------------------------------------
# Promote, run in prod, clean up
# ---------------------------------------------------------------------------------------------------------------


def promote_step(
    config: RepairConfig,
    incident: Mapping[str, Any],
    proposal: Mapping[str, Any],
    author: str,
    store: ArtifactStore,
) -> dict[str, Any]:
    """
    Commit the validated files (read from the published proposal) on ``selfheal/<incident>`` and merge or push.

    :raises RuntimeError: when the published files differ from the validated ones.
    """
    from airflow_selfheal.hooks.git import GitPromotionHook

    prefix = str(proposal["evidence_prefix"])
    index = store.read_json(f"{prefix}/sandbox.json")
    if index.get("files_hash") != proposal["files_hash"]:
        raise RuntimeError(f"the published proposal {prefix} is not the validated one; validate again")
    files = {path: store.path(f"{prefix}/files/{path}").read_text() for path in proposal["changed_files"]}
    result = GitPromotionHook().promote(
        config.project_dir,
        incident_id=str(incident["incident_id"]),
        files=files,
        message=f"selfheal: {proposal['fix_type']} for {incident['incident_id']}\n\n{proposal.get('rationale', '')}",
        author=author,
        deploy_branch=config.deploy_branch,
        mode=config.promote_mode,  # type: ignore[arg-type]
        remote=config.git_remote,
    )
    return result.to_dict()


def prod_build_command(project_dir: Path, select: str, work: Path) -> list[str]:
    """``dbt build --select <select>`` of ``project_dir`` with the profile in ``work``."""
    from airflow_selfheal.hooks.dbt import PROFILE_NAME, TARGET_NAME

    dbt = Path(sys.executable).with_name("dbt")
    return [
        str(dbt), "build", "--select", *select.split(), "--project-dir", str(project_dir),
        "--profiles-dir", str(work), "--profile", PROFILE_NAME, "--target", TARGET_NAME,
        "--target-path", str(work / "target"), "--log-path", str(work / "logs"),
    ]  # fmt: skip


def dbt_log_excerpt(output: str, limit: int = LOG_LIMIT) -> str:
    """The part of dbt's output a person needs: from its ``Completed with … errors`` summary, else the tail."""
    start = output.rfind("Completed with")
    return output[start : start + limit] if start >= 0 else output[-limit:]


def run_in_prod(config: RepairConfig, select: str) -> dict[str, Any]:
    """
    ``dbt build --select <select>`` in production from the live (promoted) project, in a child process.

    :return: ``{"success", "select", "returncode", "elapsed_seconds", "nodes", "logs_excerpt"}``.
    """
    import yaml

    from airflow_selfheal.hooks.dbt import PASSWORD_ENV, validation_profile
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

    conn_params = SelfhealSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id).conn_params
    profile = validation_profile(conn_params, clone_database=config.prod_database)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="selfheal-prod-") as folder:
        work = Path(folder)
        (work / "profiles.yml").write_text(yaml.safe_dump(profile))
        env = {
            **os.environ,
            PASSWORD_ENV: str(conn_params.get("password") or ""),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
            "DBT_USE_COLORS": "False",
        }
        completed = subprocess.run(  # noqa: S603 - fixed argv, no shell
            prod_build_command(Path(config.project_dir), select, work),
            env=env, capture_output=True, text=True, check=False, timeout=config.dbt_timeout,
        )  # fmt: skip
        results_file = work / "target" / "run_results.json"
        results = json.loads(results_file.read_text())["results"] if results_file.is_file() else []
    from airflow_selfheal.core.redaction import redact

    nodes = [{"unique_id": item["unique_id"], "status": item["status"]} for item in results]
    return {
        "success": completed.returncode == 0,
        "select": select,
        "returncode": completed.returncode,
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "nodes": nodes,
        "logs_excerpt": redact(dbt_log_excerpt(completed.stdout + completed.stderr)),
    }


def accept_baseline_step(
    config: RepairConfig, triage: Mapping[str, Any], approved_by: str, incident_id: str
) -> dict[str, Any]:
    """
    After a drift-driven fix is promoted and green in prod, accept the sources' current schemas as the baseline.

    :return: ``{"accepted": bool, "version": ..., "reason": ...}``; nothing is accepted when the failure had no
        drift root cause or no ``baseline_name`` is configured.
    """
    if not config.baseline_name:
        return {"accepted": False, "reason": "no baseline_name configured"}
    if not triage.get("root_cause"):
        return {"accepted": False, "reason": "the failure was not caused by source drift"}
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook
    from airflow_selfheal.operators.drift import capture_snapshot, connection_database, resolve_targets
    from airflow_selfheal.records.baselines import BaselineStore

    hook = SelfhealSnowflakeHook(snowflake_conn_id=config.snowflake_conn_id)
    targets = resolve_targets(
        manifest_path=str(config.manifest), tables=None, default_database=connection_database(hook)
    )
    snapshot = capture_snapshot(hook, targets)
    baselines = BaselineStore(config.baseline_name)
    version = baselines.record(snapshot.to_dict(), snapshot.content_hash)
    baselines.accept(
        version, accepted_by=approved_by, reason=f"selfheal fix for {incident_id} promoted and re-run green"
    )
    return {
        "accepted": True,
        "version": version,
        "baseline": config.baseline_name,
        "tables": len(snapshot.tables),
    }


def approval_link(approve_task: Any, dag_id: str, run_id: str, base_url: str | None) -> str | None:
    """
    The Airflow UI's "required actions" page of the approval task, or None when no base URL is known.

    Built by the standard provider's ``HITLOperator.generate_link_to_ui`` for the approval task (not the task
    that sends the page), so the link opens the Approve / Reject form.
    """
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id=dag_id, run_id=run_id, task_id=approve_task.task_id, map_index=-1)
    try:
        return str(approve_task.generate_link_to_ui(task_instance=ti, base_url=base_url))
    except ValueError as exc:
        log.warning("No approval link in the page: %s. Fix: set [api] base_url.", exc)
        return None


def decide_outcome(results: Mapping[str, Any]) -> str:
    """
    The repair's outcome from the tasks' XComs (missing ones are None).

    :param results: ``retry``, ``escalate``, ``validate``, ``approve``, ``rerun`` values, and ``states`` (task id
        to state) when known.
    :return: ``resolved``, ``retried``, ``retry_failed``, ``escalated``, ``rejected``, ``promoted_rerun_failed``,
        ``step_failed`` (a step crashed and on-call was paged, ``failure`` holds that page), ``timed_out_or_failed``.
    """
    rerun = results.get("rerun")
    if rerun is not None:
        return "resolved" if rerun.get("success") else "promoted_rerun_failed"
    failure = results.get("failure")
    if failure is not None:
        step = failure.get("failed_step")
        return {BRANCH_RETRY: "retry_failed", "rerun": "promoted_rerun_failed"}.get(step, "step_failed")
    retry = results.get("retry")
    if retry is not None:
        return "retried" if retry.get("success") else "retry_failed"
    approve = results.get("approve")
    states = results.get("states") or {}
    if approve is not None:
        approved, _ = approver(approve)
        return "promotion_failed" if approved else "rejected"
    if states.get("approve") == "success":
        # Reject skips promote; an approval lets it run.
        return "rejected" if states.get("promote") == "skipped" else "promotion_failed"
    if states.get("approve") == "failed":
        return "timed_out"
    if results.get("escalate") is not None or (results.get("validate") or {}).get("status") == "escalate":
        return "escalated"
    if (results.get("validate") or {}).get("status") == "proposal":
        return "timed_out_or_failed"
    return "failed"


def cleanup_step(
    config: RepairConfig,
    incident_id: str,
    clone_database: str | None,
    outcome: str,
    store: ArtifactStore | None,
    failed_step: str | None = None,
) -> dict[str, Any]:
    """
    Drop the clone (if any), sweep orphaned clones older than ``clone_ttl``, and write the audit outcome.

    All three always happen; only a failure to drop this run's own clone fails the task (after the audit).
    """
    from airflow_selfheal.records.audit import AuditLog

    dropped = None
    error = None
    if clone_database:
        from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

        try:
            dropped = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id).drop_clone(
                clone_database
            )
        except Exception as exc:  # noqa: BLE001 - the audit outcome must still be written; re-raised below
            error = f"{type(exc).__name__}: {exc}"
    swept: list[str] | str = []
    try:
        from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

        swept = SnowflakeCloneHook(snowflake_conn_id=config.snowflake_conn_id).sweep_clones(config.clone_ttl)
    except Exception as exc:  # noqa: BLE001 - an orphan sweep must not fail this incident's cleanup
        log.warning("The sweep of clones older than %s failed: %s", config.clone_ttl, exc)
        swept = f"failed: {type(exc).__name__}"
    extra = {"failed_step": failed_step} if failed_step else {}
    AuditLog(incident_id, store).finish(
        outcome, clone=clone_database, clone_dropped=dropped, swept_orphans=swept, error=error, **extra
    )
    if error:
        raise RuntimeError(f"could not drop clone {clone_database}: {error}")
    return {"outcome": outcome, "clone": clone_database, "clone_dropped": dropped, "swept_orphans": swept}
