"""The cosmos operator callback that keeps a failed dbt invocation's artifacts for its incident.

Cosmos calls :func:`capture_dbt_artifacts` with the task's temporary project directory after dbt ran and *before*
the failure is raised, which is the only moment ``target/run_results.json`` exists. It copies
``run_results.json``, the failed nodes' compiled SQL and ``manifest.json`` to the artifacts root, under a key made
of the task instance's dag id, run id, task id, map index and try number
(:func:`~airflow_selfheal.notifications.failure_evidence.artifact_prefix`). The failure callback,
:class:`~airflow_selfheal.notifications.failure.SelfhealFailureNotifier`, may run on another worker, so the copy
goes to shared storage.

.. code-block:: python

    from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
    from airflow_selfheal.notifications.failure import SelfhealFailureNotifier

    DbtTaskGroup(
        group_id="shop",
        ...,
        operator_args={"callback": capture_dbt_artifacts},
        default_args={"on_failure_callback": SelfhealFailureNotifier(drift_baseline="shop_raw")},
    )
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.notifications.failure_evidence import SOURCES_FILE, artifact_prefix, task_key

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_selfheal.hooks.artifacts import ArtifactStore

log = logging.getLogger(__name__)


def capture_dbt_artifacts(
    project_dir: str | os.PathLike[str], *, context: Mapping[str, Any] | None = None, **kwargs: Any
) -> None:
    """
    Copy a failed dbt invocation's artifacts to the artifacts root; a cosmos ``operator_args`` callback.

    Cosmos calls it after every dbt invocation with the temporary project directory and the task context. When
    ``target/run_results.json`` names a failed node (status ``error``, ``fail`` or ``runtime error``), or cannot
    be parsed, it copies under :func:`~airflow_selfheal.notifications.failure_evidence.artifact_prefix`:

    - ``run_results.json``, byte for byte;
    - ``compiled/<unique_id>.sql`` for each failed node found under ``target/compiled``;
    - ``manifest.json``, when dbt wrote one.

    A successful invocation copies nothing. Each file is stored once: a callback run again for the same try (same
    key) leaves the first copy as it is, with a warning if its content differs. Errors are logged, never raised:
    raising here would replace the dbt error the task is about to report.

    .. code-block:: python

        DbtTaskGroup(..., operator_args={"callback": capture_dbt_artifacts})

    :param project_dir: the dbt project directory the invocation ran in (cosmos' temporary copy).
    :param context: the task context; cosmos passes it as a keyword argument.
    :param kwargs: any other ``callback_args``; ignored.
    """
    started = time.perf_counter()
    try:
        copied = _capture_artifacts(Path(project_dir), context or {})
    except Exception:
        log.exception(
            "Could not capture the dbt artifacts of %s; the failure callback will do without", project_dir
        )
        return
    if copied:
        log.info(
            "Captured dbt artifacts %s under %s in %.3fs", copied[1], copied[0], time.perf_counter() - started
        )


def _capture_artifacts(project_dir: Path, context: Mapping[str, Any]) -> tuple[str, list[str]] | None:
    target = project_dir / "target"
    run_results = target / "run_results.json"
    sources = target / SOURCES_FILE
    raw = run_results.read_bytes() if run_results.is_file() else None
    # ``dbt source freshness`` writes its results to sources.json.
    raw_sources = sources.read_bytes() if sources.is_file() else None
    if raw is None and raw_sources is None:
        log.info("No %s: dbt wrote no run results, so there is nothing to capture", run_results)
        return None
    failed = None if raw is None else _failed_ids(raw)
    stale = None if raw_sources is None else _failed_ids(raw_sources)
    parsed_failures = [ids for ids, text in ((failed, raw), (stale, raw_sources)) if text is not None]
    # An unparseable file (None) is kept as evidence; only files that name no failure at all are skipped.
    if all(ids == [] for ids in parsed_failures):
        return None
    key = task_key(context)
    if key is None:
        log.warning("No task instance in the callback's context: cannot key the dbt artifacts; not captured")
        return None

    from airflow_selfheal.hooks.artifacts import ArtifactStore

    store = ArtifactStore()
    prefix = artifact_prefix(key)
    copied = []

    def keep(name: str, data: bytes) -> None:
        if _write_bytes(store, f"{prefix}/{name}", data):
            copied.append(name)

    # Run results first: they are the evidence the failure callback needs most.
    if raw is not None:
        keep("run_results.json", raw)
    if raw_sources is not None:
        keep(SOURCES_FILE, raw_sources)
    for unique_id, path in _compiled_files(target / "compiled", failed or []).items():
        keep(f"compiled/{unique_id}.sql", path.read_bytes())
    manifest = target / "manifest.json"
    if manifest.is_file():
        keep("manifest.json", manifest.read_bytes())
    return prefix, copied


def _failed_ids(raw: bytes) -> list[str] | None:
    """The failed nodes' unique ids; None when the file cannot be parsed (it is then kept as evidence)."""
    from airflow_selfheal.records.incidents import FAILED_STATUSES

    try:
        data = json.loads(raw)
        results = data["results"]
        return [
            str(result["unique_id"])
            for result in results
            if str(result.get("status")).lower() in FAILED_STATUSES and result.get("unique_id")
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def _compiled_files(compiled_root: Path, unique_ids: Sequence[str]) -> dict[str, Path]:
    """
    Find each node's compiled SQL by file name under ``target/compiled/<package>/``.

    dbt names a compiled file after the node (``stg_orders.sql``; a generic test's file is named after the test
    inside a folder named after its YAML file), so no manifest needs to be parsed to find it.
    """
    wanted: dict[tuple[str, str], str] = {}
    for unique_id in unique_ids:
        parts = unique_id.split(".")
        if len(parts) >= 3:
            wanted[(parts[1], f"{parts[2]}.sql")] = unique_id
    found: dict[str, Path] = {}
    if not wanted or not compiled_root.is_dir():
        return found
    packages = {package for package, _ in wanted}
    for package in packages:
        for folder, _, files in os.walk(compiled_root / package):
            for name in files:
                match = wanted.get((package, name))
                if match is not None and match not in found:
                    found[match] = Path(folder) / name
    return found


def _write_bytes(store: ArtifactStore, relative: str, data: bytes) -> bool:
    """
    Store one artifact of the try, once: the first copy under a key is the one the incident reads.

    A callback run again for the same try (cosmos retrying it, or a second dbt invocation in one try) meets the
    copy already stored under the same key. The same bytes are nothing to do; other bytes are left as they are,
    with a warning: the record is never overwritten, and the first copy is the one the failure callback may
    already have read.

    :return: whether the stored copy is ``data``.
    """
    if store.create_bytes(relative, data):
        return True
    try:
        stored = store.read_bytes(relative)
    except FileNotFoundError:
        # Moved aside (quarantined) between the create and the read: keep out of the way.
        log.warning("%s existed and then did not; this try's copy was not stored", store.url(relative))
        return False
    if stored == data:
        log.debug("%s was already captured for this try, with the same content", store.url(relative))
        return True
    log.warning(
        "%s was already captured for this try with other content (%s bytes, this copy %s bytes); the first "
        "copy is kept",
        store.url(relative),
        len(stored),
        len(data),
    )
    return False
