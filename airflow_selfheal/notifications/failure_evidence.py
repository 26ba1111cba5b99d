"""The evidence of a failed try: where its captured dbt artifacts live, and reading them back for its incident.

:func:`~airflow_selfheal.callbacks.capture.capture_dbt_artifacts` writes one try's ``run_results.json``,
``sources.json``, compiled SQL and ``manifest.json`` under :func:`artifact_prefix`; the failure notifier
(:class:`~airflow_selfheal.notifications.failure.SelfhealFailureNotifier`) reads them back with the functions
here, together with what the task context carries: the cosmos node, the dbt tasks a failure blocked, the drift
check's report (XCom), the dbt project's git commit and the secrets of the task's warehouse connection.

Every reader is forgiving: evidence that cannot be collected becomes a note in the ``missing`` list it is given,
never an exception.
"""

from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.core.incident import DbtNodeRef
    from airflow_selfheal.hooks.artifacts import ArtifactStore

log = logging.getLogger(__name__)

ARTIFACTS_FOLDER = "dbt_artifacts"
SOURCES_FILE = "sources.json"
CAPTURE_HINT = "add operator_args={'callback': capture_dbt_artifacts} to the DbtTaskGroup"


# ---------------------------------------------------------------------------------------------------------------
# Where one try's artifacts live
# ---------------------------------------------------------------------------------------------------------------


class TaskKey(NamedTuple):
    """The failed try: the key of its captured artifacts and of its incident occurrence."""

    dag_id: str
    run_id: str | None
    task_id: str | None
    map_index: int
    try_number: int | None


def artifact_prefix(key: TaskKey) -> str:
    """
    The folder, relative to the artifacts root, holding one try's captured dbt artifacts.

    :param key: the task instance's identity.
    :return: ``dbt_artifacts/<dag_id>/<run_id>/<task_id>/<map_index>/<try_number>``, each part path-safe.
    """
    from airflow_selfheal.records.incidents import safe_segment

    return "/".join(
        [
            ARTIFACTS_FOLDER,
            safe_segment(key.dag_id),
            safe_segment(key.run_id),
            safe_segment(key.task_id),
            safe_segment(key.map_index),
            safe_segment(key.try_number),
        ]
    )


def task_key(context: Mapping[str, Any]) -> TaskKey | None:
    """
    The failed try's identity from a task context, or None when the context has no task instance.

    :param context: the Airflow task context.
    :return: the key.
    """
    ti = context.get("ti") or context.get("task_instance")
    if ti is None:
        return None
    dag = context.get("dag")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None)
    if not dag_id:
        return None
    map_index = getattr(ti, "map_index", -1)
    try_number = getattr(ti, "try_number", None)
    return TaskKey(
        dag_id=str(dag_id),
        run_id=optional_text(getattr(ti, "run_id", None) or context.get("run_id")),
        task_id=optional_text(getattr(ti, "task_id", None)),
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=try_number if isinstance(try_number, int) else None,
    )


def optional_text(value: Any) -> str | None:
    """``str(value)``, keeping None as None."""
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------------------------
# The captured artifacts
# ---------------------------------------------------------------------------------------------------------------


def captured_run_results(
    store: ArtifactStore | None, prefix: str | None, missing: list[str]
) -> list[dict[str, Any]]:
    """The failed results of the captured ``run_results.json``; a note in ``missing`` when there are none."""
    from airflow_selfheal.records.incidents import FAILED_STATUSES

    if store is None or prefix is None:
        missing.append("run_results.json not read: no artifacts key for this try")
        return []
    location = f"{prefix}/run_results.json"
    try:
        text = store.read_text(location)
    except FileNotFoundError:
        missing.append(f"run_results.json not captured for this try ({CAPTURE_HINT})")
        return []
    except Exception as exc:
        missing.append(f"run_results.json unreadable at {location} ({type(exc).__name__}: {exc})")
        return []
    try:
        results = json.loads(text)["results"]
        if not isinstance(results, list):
            raise TypeError("'results' is not a list")
    except (ValueError, TypeError, KeyError) as exc:
        missing.append(f"run_results.json at {location} is corrupt ({type(exc).__name__}: {exc})")
        return []
    failed = [
        result
        for result in results
        if isinstance(result, dict) and str(result.get("status")).lower() in FAILED_STATUSES
    ]
    if not failed:
        missing.append("run_results.json names no failed node")
    return failed


def captured_freshness(
    store: ArtifactStore | None, prefix: str | None, unique_id: str | None
) -> dict[str, Any] | None:
    """The failed source's freshness facts from a captured ``sources.json`` (``dbt source freshness``), if any."""
    from airflow_selfheal.core.incident import freshness_facts

    if store is None or prefix is None:
        return None
    try:
        data = json.loads(store.read_text(f"{prefix}/{SOURCES_FILE}"))
    except FileNotFoundError:
        return None
    except Exception as exc:
        log.warning("The captured %s is unreadable: %s", SOURCES_FILE, exc)
        return None
    return freshness_facts(data, unique_id) if isinstance(data, dict) else None


def captured_compiled_sql(
    store: ArtifactStore | None,
    prefix: str | None,
    unique_id: str | None,
    result: Mapping[str, Any] | None,
    missing: list[str],
) -> str | None:
    """The node's captured compiled SQL, else the ``compiled_code`` of its run result; a note when neither."""
    if unique_id is None:
        return None
    if store is not None and prefix is not None:
        try:
            return store.read_text(f"{prefix}/compiled/{unique_id}.sql")
        except FileNotFoundError:
            pass
        except Exception as exc:
            log.warning("Could not read the captured compiled SQL of %s: %s", unique_id, exc)
    # dbt 1.5+ also puts the compiled code in each run result.
    compiled = None if result is None else result.get("compiled_code")
    if isinstance(compiled, str) and compiled:
        return compiled
    missing.append(f"compiled SQL of {unique_id} not captured")
    return None


def error_text(exception: Any, failed_results: Sequence[Mapping[str, Any]], missing: list[str]) -> str:
    """The exception's text, followed by each failed result's message it does not already contain."""
    if exception is None:
        missing.append("exception missing from the context")
        text = ""
    elif isinstance(exception, BaseException):
        text = f"{type(exception).__name__}: {exception}"
    else:
        text = str(exception)
    for result in failed_results:
        message = result.get("message")
        if isinstance(message, str) and message and message not in text:
            text = f"{text}\n{message}" if text else message
    if not text:
        missing.append("no error text: neither an exception nor a failed result's message")
    return text


# ---------------------------------------------------------------------------------------------------------------
# The dbt nodes: the failed ones and those the failure blocked
# ---------------------------------------------------------------------------------------------------------------


def node_ref(
    unique_id: str, manifest: dict[str, Any] | None, node_config: Mapping[str, Any] | None
) -> DbtNodeRef:
    """
    A failed node with its lineage: from the manifest, else from cosmos' node config, else from its unique id.

    :param unique_id: the node's unique id.
    :param manifest: the pipeline's manifest, if available.
    :param node_config: cosmos' ``dbt_node_config`` of the failed task, if any.
    :return: the node.
    """
    from airflow_selfheal.core.incident import DbtNodeRef
    from airflow_selfheal.core.manifest import downstream, node, upstream

    parts = unique_id.split(".")
    found = node(manifest, unique_id) if manifest is not None else None
    if found is not None and manifest is not None:
        return DbtNodeRef(
            unique_id=unique_id,
            resource_type=str(found.get("resource_type") or parts[0]),
            name=str(found.get("name") or (parts[2] if len(parts) > 2 else unique_id)),
            original_file_path=optional_text(found.get("original_file_path")),
            upstream=upstream(manifest, unique_id),
            downstream=downstream(manifest, unique_id),
        )
    if node_config and node_config.get("unique_id") == unique_id:
        depends_on = node_config.get("depends_on") or ()
        return DbtNodeRef(
            unique_id=unique_id,
            resource_type=_resource_type(node_config.get("resource_type")) or parts[0],
            name=str(node_config.get("name") or node_config.get("resource_name") or parts[-1]),
            original_file_path=optional_text(node_config.get("original_file_path")),
            upstream=tuple(sorted(str(parent) for parent in depends_on)),
        )
    return DbtNodeRef(
        unique_id=unique_id, resource_type=parts[0], name=parts[2] if len(parts) > 2 else unique_id
    )


def downstream_dbt_nodes(task: Any) -> list[dict[str, Any]]:
    """
    The cosmos ``dbt_node_config`` of every dbt task downstream of ``task`` in its DAG, one per dbt node.

    Cosmos keeps each task's node in the operator's ``extra_context["dbt_node_config"]`` (the same mapping it
    merges into the task context). A model's run and test tasks carry the same node, so nodes are deduplicated
    by unique id, and sorted by it.

    :param task: the failed task (``context["task"]``); anything without ``get_flat_relatives`` gives none.
    :return: the node configs (``unique_id``, ``resource_type``, ``name``, ``original_file_path`` ...).
    """
    relatives = getattr(task, "get_flat_relatives", None)
    if relatives is None:
        return []
    try:
        downstream = list(relatives(upstream=False))
    except Exception as exc:
        log.warning("Could not walk the tasks downstream of %s: %s", getattr(task, "task_id", task), exc)
        return []
    found: dict[str, dict[str, Any]] = {}
    for relative in downstream:
        extra = getattr(relative, "extra_context", None)
        config = extra.get("dbt_node_config") if isinstance(extra, dict) else None
        if isinstance(config, dict) and config.get("unique_id"):
            found.setdefault(str(config["unique_id"]), dict(config))
    return [found[unique_id] for unique_id in sorted(found)]


def blocked_ref(config: Mapping[str, Any], manifest: dict[str, Any] | None) -> DbtNodeRef:
    """A blocked node, named as ``dbt --select`` names it: the manifest's name, else its unique id's part."""
    from airflow_selfheal.core.incident import DbtNodeRef
    from airflow_selfheal.core.manifest import node

    unique_id = str(config["unique_id"])
    parts = unique_id.split(".")
    found = (node(manifest, unique_id) if manifest is not None else None) or {}
    resource_type = str(found.get("resource_type") or _resource_type(config.get("resource_type")) or parts[0])
    # A source's unique id ends with <source>.<table>, a test's with its name and a hash, a model's with its name.
    fallback = parts[-1] if resource_type == "source" else parts[2] if len(parts) > 2 else unique_id
    return DbtNodeRef(
        unique_id=unique_id,
        resource_type=resource_type,
        name=str(found.get("name") or fallback),
        original_file_path=optional_text(found.get("original_file_path") or config.get("original_file_path")),
    )


def _resource_type(value: Any) -> str | None:
    """``model`` from a cosmos ``DbtResourceType.MODEL``, its value, or its repr."""
    if value is None:
        return None
    text = str(getattr(value, "value", value))
    return text.rsplit(".", 1)[-1].lower() or None


def generic_test_name(manifest: dict[str, Any] | None, unique_id: str | None) -> str | None:
    """The generic test a test node instantiates (``not_null``, ``unique`` ...), from the manifest."""
    if manifest is None or unique_id is None:
        return None
    from airflow_selfheal.core.manifest import node

    found = node(manifest, unique_id) or {}
    metadata = found.get("test_metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return str(name) if name else None


# ---------------------------------------------------------------------------------------------------------------
# The manifest, the drift report and the dbt project
# ---------------------------------------------------------------------------------------------------------------


def pipeline_manifest(
    manifest_path: str | None, store: ArtifactStore | None, prefix: str | None, missing: list[str]
) -> dict[str, Any] | None:
    """
    The pipeline's manifest, for lineage: ``manifest_path``, else the one captured from the failed invocation.

    :param manifest_path: the configured manifest, or None.
    :param store: the artifacts store, or None when it is unavailable.
    :param prefix: the try's :func:`artifact_prefix`, or None.
    :param missing: receives a note naming every reason when there is no manifest.
    :return: the manifest, or None.
    """
    from airflow_selfheal.core.manifest import ManifestError, check_manifest

    reasons = []
    if manifest_path:
        try:
            return load_manifest_cached(manifest_path)
        except (ManifestError, OSError) as exc:
            reasons.append(str(exc))
    if store is not None and prefix is not None:
        try:
            return check_manifest(json.loads(store.read_text(f"{prefix}/manifest.json")), "captured manifest")
        except FileNotFoundError:
            reasons.append("no manifest.json was captured")
        except Exception as exc:
            reasons.append(f"captured manifest.json unreadable ({exc})")
    missing.append(
        f"dbt manifest unavailable, so upstream/downstream are unknown: {'; '.join(reasons) or 'none configured'}"
    )
    return None


_MANIFEST_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def load_manifest_cached(path: str) -> dict[str, Any]:
    """Parse a manifest once per process and file version: every task of a group reads the same one."""
    from airflow_selfheal.core.manifest import load_manifest

    stat = os.stat(path)
    cache_key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    cached = _MANIFEST_CACHE.get(cache_key)
    if cached is None:
        cached = load_manifest(path)
        _MANIFEST_CACHE.clear()  # one manifest is enough; a long-lived worker must not pile them up
        _MANIFEST_CACHE[cache_key] = cached
    return cached


def drift_events(
    ti: Any,
    key: TaskKey | None,
    *,
    drift_task_id: str | None,
    drift_baseline: str | None,
    missing: list[str],
) -> list[dict[str, Any]]:
    """
    The events of the drift report that ``drift_task_id`` returned (XCom) in the failed try's run.

    :param ti: the task instance, whose ``xcom_pull`` reads the report.
    :param key: the failed try, for the DAG and run to read from.
    :param drift_task_id: the drift check's task id; None reads nothing.
    :param drift_baseline: when set, a report about another baseline is ignored.
    :param missing: receives a note when there is no report to read.
    :return: the events, as dicts with a ``kind``.
    """
    if not drift_task_id:
        return []
    where = f"drift report of task {drift_task_id!r} unavailable, so no root cause was correlated"
    if ti is None or not hasattr(ti, "xcom_pull"):
        missing.append(f"{where}: no task instance")
        return []
    try:
        pulled = ti.xcom_pull(
            task_ids=drift_task_id,
            dag_id=key.dag_id if key else None,
            run_id=key.run_id if key else None,
        )
    except Exception as exc:
        missing.append(f"{where}: {type(exc).__name__}: {exc}")
        return []
    reports = [
        report for report in (pulled if isinstance(pulled, list) else [pulled]) if hasattr(report, "get")
    ]
    if drift_baseline:
        reports = [r for r in reports if r.get("baseline_name") in (None, drift_baseline)]
    if not reports:
        missing.append(f"{where}: no report in this run")
        return []
    return [
        dict(event)
        for report in reports
        for event in (report.get("events") or ())
        if hasattr(event, "get") and event.get("kind")
    ]


def dbt_project_dir(
    project_dir: str | None, node_config: Mapping[str, Any] | None, manifest_path: str | None
) -> str | None:
    """
    The dbt project, for its git commit: ``project_dir``, else derived from the cosmos node or the manifest.

    :param project_dir: the configured project directory, or None.
    :param node_config: cosmos' ``dbt_node_config``, whose absolute ``file_path`` ends with its relative one.
    :param manifest_path: the configured manifest, ``<project>/target/manifest.json``.
    :return: the directory, or None when nothing names it.
    """
    if project_dir:
        return project_dir
    if node_config:
        file_path = str(node_config.get("file_path") or "")
        relative = str(node_config.get("original_file_path") or "")
        if file_path and relative and file_path.endswith(relative) and os.path.isabs(file_path):
            return file_path[: -len(relative)].rstrip("/\\") or None
    if manifest_path:
        return str(Path(manifest_path).resolve().parent.parent)
    return None


@lru_cache(maxsize=16)
def git_sha(project_dir: str) -> str | None:
    """The dbt project's ``HEAD`` commit, once per process and directory; None outside a git work tree."""
    from airflow_selfheal.hooks.git import head_sha

    return head_sha(project_dir)


# ---------------------------------------------------------------------------------------------------------------
# Secrets to redact
# ---------------------------------------------------------------------------------------------------------------


def connection_secrets(context: Mapping[str, Any]) -> list[str]:
    """
    Every secret of the cosmos task's profile connection, when it has one, then of its ``profile_args``.

    That is the connection's password and the secrets of its extras, a key pair's ``private_key_content`` and an
    OAuth token included (:func:`~airflow_selfheal.core.redaction.secrets_of_connection`), then those the profile
    mapping's ``profile_args`` set over the connection.
    """
    from airflow_selfheal.core.redaction import secrets_of_connection

    task = context.get("task")
    mapping = getattr(getattr(task, "profile_config", None), "profile_mapping", None)
    profile_args = getattr(mapping, "profile_args", None)
    overrides = secrets_of_connection(profile_args) if isinstance(profile_args, dict) else []
    return list(dict.fromkeys([*_secrets_of(getattr(mapping, "conn_id", None)), *overrides]))


def operator_connection_secrets(context: Mapping[str, Any]) -> list[str]:
    """The same for a non-dbt task's Snowflake connection (``snowflake_conn_id``), e.g. the drift check's."""
    return _secrets_of(getattr(context.get("task"), "snowflake_conn_id", None))


def _secrets_of(conn_id: Any) -> list[str]:
    if not isinstance(conn_id, str) or not conn_id:
        return []
    try:
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_selfheal.core.redaction import secrets_of_connection

        return secrets_of_connection(BaseHook.get_connection(conn_id))
    except Exception as exc:
        log.debug("Could not read connection %s to redact its secrets: %s", conn_id, exc)
        return []
