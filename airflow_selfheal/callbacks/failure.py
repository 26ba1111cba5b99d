"""Turn a failed dbt task into an incident, start one repair run per fingerprint and notify on-call.

Two pieces, wired into a cosmos ``DbtTaskGroup``:

- :func:`capture_dbt_artifacts`, a cosmos ``operator_args={"callback": ...}`` callable. Cosmos calls it with the
  task's temporary project directory after dbt ran and *before* the failure is raised, which is the only moment
  ``target/run_results.json`` exists. It copies ``run_results.json``, the failed nodes' compiled SQL and
  ``manifest.json`` to the artifacts root, under a key made of the task instance's dag id, run id, task id, map
  index and try number. The failure callback may run on another worker, so the copy goes to shared storage.
- :class:`SelfhealFailureNotifier`, the ``on_failure_callback``. It reads those artifacts back, builds and
  classifies the :class:`~airflow_selfheal.core.incident.Incident` (correlated with this run's drift report, read
  from the drift check's XCom), stores it with :class:`~airflow_selfheal.records.incidents.IncidentStore`, starts the
  repair DAG with :func:`~airflow_selfheal.hooks.airflow_api.dispatch_from_task` and sends the failed-run page.

Neither ever raises into the task: every step is guarded and logged, and a step that fails leaves a note in the
incident's ``missing`` list instead of stopping the others.

.. code-block:: python

    from airflow_selfheal.callbacks.failure import SelfhealFailureNotifier, capture_dbt_artifacts

    DbtTaskGroup(
        group_id="shop",
        ...,
        operator_args={"callback": capture_dbt_artifacts},
        default_args={
            "on_failure_callback": SelfhealFailureNotifier(
                manifest_path="/opt/dbt/shop/target/manifest.json",
                drift_baseline="shop_raw",
                slack_conn_id="slack_data_alerts",
                pagerduty_conn_id="pagerduty_data",
            )
        },
    )
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from airflow.providers.common.compat.sdk import BaseNotifier

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import jinja2
    from airflow.sdk import Context

    from airflow_selfheal.core.incident import DbtNodeRef, Incident
    from airflow_selfheal.core.pages.render import Page
    from airflow_selfheal.hooks.airflow_api import DispatchResult
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.notifications.delivery import DeliveryReport

log = logging.getLogger(__name__)

ARTIFACTS_FOLDER = "dbt_artifacts"
SOURCES_FILE = "sources.json"
NOTIFICATION_SCOPE = "failures"
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
        run_id=_text(getattr(ti, "run_id", None) or context.get("run_id")),
        task_id=_text(getattr(ti, "task_id", None)),
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=try_number if isinstance(try_number, int) else None,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# ---------------------------------------------------------------------------------------------------------------
# The cosmos callback: copy the artifacts while they exist
# ---------------------------------------------------------------------------------------------------------------


def capture_dbt_artifacts(
    project_dir: str | os.PathLike[str], *, context: Mapping[str, Any] | None = None, **kwargs: Any
) -> None:
    """
    Copy a failed dbt invocation's artifacts to the artifacts root; a cosmos ``operator_args`` callback.

    Cosmos calls it after every dbt invocation with the temporary project directory and the task context. When
    ``target/run_results.json`` names a failed node (status ``error``, ``fail`` or ``runtime error``), or cannot
    be parsed, it copies under :func:`artifact_prefix`:

    - ``run_results.json``, byte for byte;
    - ``compiled/<unique_id>.sql`` for each failed node found under ``target/compiled``;
    - ``manifest.json``, when dbt wrote one.

    A successful invocation copies nothing. Errors are logged, never raised: raising here would replace the
    dbt error the task is about to report.

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
    if raw is not None:
        _write_bytes(store, f"{prefix}/run_results.json", raw)
        copied.append("run_results.json")
    if raw_sources is not None:
        _write_bytes(store, f"{prefix}/{SOURCES_FILE}", raw_sources)
        copied.append(SOURCES_FILE)
    for unique_id, path in _compiled_files(target / "compiled", failed or []).items():
        _write_bytes(store, f"{prefix}/compiled/{unique_id}.sql", path.read_bytes())
        copied.append(f"compiled/{unique_id}.sql")
    manifest = target / "manifest.json"
    if manifest.is_file():
        _write_bytes(store, f"{prefix}/manifest.json", manifest.read_bytes())
        copied.append("manifest.json")
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


def _write_bytes(store: ArtifactStore, relative: str, data: bytes) -> None:
    target = store.path(relative)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


# ---------------------------------------------------------------------------------------------------------------
# The failure notifier
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class FailureOutcome:
    """
    What one failure callback did.

    :param incident: the classified incident, as stored.
    :param new_incident: True when this failure created the incident, False for a repeat, None if not stored.
    :param dispatch: the repair run's dispatch result, when dispatched.
    :param delivery: the failed-run notification's delivery report, when a channel is configured.
    :param errors: the side effects that failed (store, dispatch, delivery), one line each.
    :param local_seconds: wall time spent, excluding the dispatch and delivery calls (network).
    """

    incident: Incident
    new_incident: bool | None = None
    dispatch: DispatchResult | None = None
    delivery: DeliveryReport | None = None
    errors: list[str] = field(default_factory=list)
    local_seconds: float = 0.0


class SelfhealFailureNotifier(BaseNotifier):
    """
    ``on_failure_callback`` for cosmos dbt tasks: incident, triage, one repair run per fingerprint, page.

    For each failed try it:

    1. builds an incident from the context (pipeline DAG, run, task, try; the cosmos ``dbt_node_config``; the
       exception), the artifacts :func:`capture_dbt_artifacts` copied (run results, compiled SQL), the manifest's
       lineage, the dbt project's git commit and the environment; secrets, including the task's profile
       connection password, are redacted before anything is stored or sent;
    2. classifies it, correlating with the drift report that ``drift_task_id`` returned in the same run;
    3. stores it under ``incidents/<incident_id>/`` (a repeat adds an occurrence);
    4. starts the repair DAG with the incident as conf; the run id comes from the fingerprint, so a repeat
       starts nothing;
    5. sends "dbt run failed in <env>: model stg_orders (missing_column)" to Slack and/or PagerDuty, once per
       fingerprint (PagerDuty ``dedup_key`` = fingerprint).

    On a task outside dbt (``on_failure_callback`` of the drift check, say), the incident is about that task:
    its error, its task id in the fingerprint, and as ``blocked_nodes`` the dbt nodes of every cosmos task
    downstream of it, which its failure kept from running and which a retry rebuilds.

    Evidence that cannot be collected (a non-cosmos task, a missing or corrupt ``run_results.json``, no drift
    report...) is named in the incident's ``missing`` notes. Nothing is ever raised into the task.

    .. code-block:: python

        DbtTaskGroup(
            ...,
            operator_args={"callback": capture_dbt_artifacts},
            default_args={
                "on_failure_callback": SelfhealFailureNotifier(
                    manifest_path=str(MANIFEST_PATH), drift_baseline="shop_raw", slack_conn_id="slack_alerts"
                )
            },
        )

    :param manifest_path: the pipeline's dbt ``manifest.json``, for lineage; when None, the manifest captured
        from the failed invocation is used.
    :param project_dir: the dbt project, for its git commit; when None, it is derived from the cosmos node's
        file path or from ``manifest_path``.
    :param drift_task_id: the drift check task in the same DAG run whose report (XCom) is correlated; None to
        skip.
    :param drift_baseline: when set, a drift report about another baseline is ignored.
    :param slack_conn_id: ``slackwebhook`` connection for the failed-run notification, or None.
    :param pagerduty_conn_id: ``pagerduty_events`` connection for the failed-run notification, or None.
    :param repair_dag_id: the repair DAG; defaults to ``[selfheal] repair_dag_id``.
    :param environment: the environment name in the incident and the title; defaults to
        ``[selfheal] environment``.
    :param dispatch: whether to start the repair DAG.
    :param secrets: more exact values to redact, beyond the profile connection's secrets and known shapes.
    """

    # Not templated: one notifier instance serves every task of the group, and rendering mutates it in place.
    template_fields: Sequence[str] = ()

    def __init__(
        self,
        *,
        manifest_path: str | os.PathLike[str] | None = None,
        project_dir: str | os.PathLike[str] | None = None,
        drift_task_id: str | None = "check_source_drift",
        drift_baseline: str | None = None,
        slack_conn_id: str | None = None,
        pagerduty_conn_id: str | None = None,
        repair_dag_id: str | None = None,
        environment: str | None = None,
        dispatch: bool = True,
        secrets: Sequence[str] = (),
    ) -> None:
        super().__init__()
        for name, value in (
            ("drift_task_id", drift_task_id),
            ("drift_baseline", drift_baseline),
            ("slack_conn_id", slack_conn_id),
            ("pagerduty_conn_id", pagerduty_conn_id),
            ("repair_dag_id", repair_dag_id),
            ("environment", environment),
        ):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        if isinstance(secrets, str):
            raise ValueError("secrets must be a sequence of strings, not one string")
        self.manifest_path = None if manifest_path is None else str(manifest_path)
        self.project_dir = None if project_dir is None else str(project_dir)
        self.drift_task_id = drift_task_id
        self.drift_baseline = drift_baseline
        self.slack_conn_id = slack_conn_id
        self.pagerduty_conn_id = pagerduty_conn_id
        self.repair_dag_id = repair_dag_id
        self.environment = environment
        self.dispatch = dispatch
        self.secrets = tuple(str(secret) for secret in secrets)

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """
        Render nothing: no field is templated, and skipping Jinja keeps the callback fast and unable to fail here.

        :param context: the task context.
        :param jinja_env: unused.
        """

    def notify(self, context: Context) -> None:
        """
        Handle one failed try; never raises.

        :param context: the task context Airflow passes to ``on_failure_callback``.
        """
        try:
            outcome = self.handle(context)
        except Exception:
            self.log.exception("The selfheal failure callback failed; the task's own failure is unaffected")
            return
        incident = outcome.incident
        self.log.info(
            "Incident %s (%s, %s) for %s: new=%s, repair run %s, notification %s, %.3fs excluding network%s",
            incident.incident_id,
            (incident.triage or {}).get("failure_class"),
            (incident.triage or {}).get("action"),
            ", ".join(node.unique_id for node in incident.nodes) or incident.task_id,
            outcome.new_incident,
            None
            if outcome.dispatch is None
            else f"{outcome.dispatch.run_id} (created={outcome.dispatch.created})",
            None if outcome.delivery is None else outcome.delivery.channels,
            outcome.local_seconds,
            "; errors: " + "; ".join(outcome.errors) if outcome.errors else "",
        )

    def handle(self, context: Context | Mapping[str, Any]) -> FailureOutcome:
        """
        Build, classify, store, dispatch and notify; the work behind :meth:`notify`, returning what happened.

        Side effects that fail (storage, dispatch, delivery) are logged and listed in ``errors``.

        :param context: the task context.
        :return: the outcome.
        """
        started = time.perf_counter()
        values = cast("Mapping[str, Any]", context)
        incident, store = self._build(values)
        outcome = FailureOutcome(incident=incident)
        network = 0.0

        if store is not None:
            try:
                from airflow_selfheal.records.incidents import IncidentStore, occurrence_record

                outcome.new_incident = IncidentStore(store).save(incident, occurrence_record(incident))
            except Exception as exc:
                outcome.errors.append(self._error("store the incident", exc))

        if self.dispatch:
            began = time.perf_counter()
            try:
                outcome.dispatch = self._dispatch(incident, store)
            except Exception as exc:
                outcome.errors.append(self._error("start the repair DAG", exc))
            network += time.perf_counter() - began

        if self.slack_conn_id or self.pagerduty_conn_id:
            began = time.perf_counter()
            try:
                from airflow_selfheal.notifications.delivery import deliver

                outcome.delivery = deliver(
                    failure_page(incident),
                    slack_conn_id=self.slack_conn_id,
                    pagerduty_conn_id=self.pagerduty_conn_id,
                    store=store,
                    scope=NOTIFICATION_SCOPE,
                )
            except Exception as exc:
                outcome.errors.append(self._error("send the failed-run notification", exc))
            network += time.perf_counter() - began

        outcome.local_seconds = time.perf_counter() - started - network
        return outcome

    # -----------------------------------------------------------------------------------------------------------

    def _error(self, what: str, exc: BaseException) -> str:
        from airflow_selfheal.core.redaction import redact

        line = redact(f"could not {what}: {type(exc).__name__}: {exc}", extra_secrets=self.secrets)[:500]
        self.log.warning("Selfheal failure callback %s", line)
        return line

    def _build(self, values: Mapping[str, Any]) -> tuple[Incident, ArtifactStore | None]:
        from airflow_selfheal.core.incident import build_incident
        from airflow_selfheal.core.redaction import redact
        from airflow_selfheal.core.triage import classify, lineage_relations

        missing: list[str] = []
        key = task_key(values)
        if key is None:
            missing.append("task instance missing from the context: run, task and try unknown")
        ti = values.get("ti") or values.get("task_instance")

        settings = None
        try:
            from airflow_selfheal.config import get_settings

            settings = get_settings()
        except Exception as exc:
            missing.append(f"selfheal settings unreadable ({type(exc).__name__}: {exc})")

        store: ArtifactStore | None = None
        try:
            from airflow_selfheal.hooks.artifacts import ArtifactStore

            store = ArtifactStore()
        except Exception as exc:
            missing.append(f"artifacts store unavailable ({type(exc).__name__}: {exc})")

        prefix = None if key is None else artifact_prefix(key)
        failed_results = _captured_run_results(store, prefix, missing)

        node_config = values.get("dbt_node_config")
        if not hasattr(node_config, "get"):
            node_config = None
            source = "taken from run_results.json" if failed_results else "unknown"
            missing.append(
                f"dbt_node_config missing from the context (not a cosmos dbt task): dbt node {source}"
            )

        unique_ids = _dedup(
            [str(result["unique_id"]) for result in failed_results if result.get("unique_id")]
            or ([str(node_config["unique_id"])] if node_config and node_config.get("unique_id") else [])
        )
        # A task outside dbt (the drift check) that fails keeps every dbt task downstream of it from running.
        blocked_configs = [] if unique_ids else downstream_dbt_nodes(values.get("task"))
        manifest = self._manifest(store, prefix, missing) if unique_ids or blocked_configs else None
        nodes = [_node_ref(unique_id, manifest, node_config) for unique_id in unique_ids]
        blocked = [_blocked_ref(config, manifest) for config in blocked_configs]

        freshness = _captured_freshness(store, prefix, unique_ids[0] if unique_ids else None)
        if freshness and not unique_ids and freshness.get("unique_id"):
            unique_ids = [str(freshness["unique_id"])]
            nodes = [_node_ref(unique_ids[0], manifest, node_config)]
        error = _error_text(values.get("exception"), failed_results, missing)
        primary = nodes[0].unique_id if nodes else None
        primary_result = next((r for r in failed_results if r.get("unique_id") == primary), None)
        compiled_sql = _captured_compiled_sql(store, prefix, primary, primary_result, missing)
        drift_events = self._drift_events(ti, key, missing)
        dbt_project = self._project_dir(node_config)
        secrets = (*self.secrets, *_connection_secrets(values), *_operator_connection_secrets(values))
        # Notes can quote an exception's text; the incident redacts its free text but not its notes.
        missing = [redact(note, extra_secrets=secrets) for note in missing]

        ended = getattr(ti, "end_date", None)
        incident = build_incident(
            pipeline=(key.dag_id if key else None) or _dag_id(values) or "unknown",
            run_id=key.run_id if key else _text(values.get("run_id")),
            task_id=key.task_id if key else None,
            map_index=key.map_index if key else -1,
            try_number=key.try_number if key else None,
            nodes=nodes,
            error=error,
            compiled_sql=compiled_sql,
            run_results_excerpt=failed_results,
            failed_at=ended if isinstance(ended, datetime) else datetime.now(timezone.utc),
            git_sha=None if dbt_project is None else _head_sha(dbt_project),
            environment=self.environment or (settings.environment if settings else "dev"),
            missing=missing,
            secrets=secrets,
            freshness=freshness,
            blocked_nodes=blocked,
        )

        resource_type = nodes[0].resource_type if nodes else None
        test_name = _test_name(manifest, primary)
        triage_text = incident.error
        if resource_type == "test" and not test_name and "failure in test" not in triage_text.lower():
            # cosmos's exception names a failed test only as "<name>: Got 3 results"; dbt's log says it this way.
            triage_text = f"Failure in test {nodes[0].name}\n{triage_text}"
        triage = classify(
            triage_text,
            resource_type=resource_type,
            test_name=test_name,
            # ``dbt source freshness`` writes no run_results.json: its status is in sources.json.
            status=_text(primary_result.get("status"))
            if primary_result
            else _text((freshness or {}).get("status")),
            drift_events=drift_events,
            lineage=lineage_relations(manifest, unique_ids),
        )
        return incident.with_triage(triage.to_dict()), store

    def _manifest(
        self, store: ArtifactStore | None, prefix: str | None, missing: list[str]
    ) -> dict[str, Any] | None:
        from airflow_selfheal.core.manifest import ManifestError, check_manifest

        reasons = []
        if self.manifest_path:
            try:
                return _load_manifest_cached(self.manifest_path)
            except (ManifestError, OSError) as exc:
                reasons.append(str(exc))
        if store is not None and prefix is not None:
            try:
                return check_manifest(
                    json.loads(store.path(f"{prefix}/manifest.json").read_text()), "captured manifest"
                )
            except FileNotFoundError:
                reasons.append("no manifest.json was captured")
            except (ValueError, OSError) as exc:
                reasons.append(f"captured manifest.json unreadable ({exc})")
        missing.append(
            f"dbt manifest unavailable, so upstream/downstream are unknown: {'; '.join(reasons) or 'none configured'}"
        )
        return None

    def _drift_events(self, ti: Any, key: TaskKey | None, missing: list[str]) -> list[dict[str, Any]]:
        if not self.drift_task_id:
            return []
        where = f"drift report of task {self.drift_task_id!r} unavailable, so no root cause was correlated"
        if ti is None or not hasattr(ti, "xcom_pull"):
            missing.append(f"{where}: no task instance")
            return []
        try:
            pulled = ti.xcom_pull(
                task_ids=self.drift_task_id,
                dag_id=key.dag_id if key else None,
                run_id=key.run_id if key else None,
            )
        except Exception as exc:
            missing.append(f"{where}: {type(exc).__name__}: {exc}")
            return []
        reports = [
            report for report in (pulled if isinstance(pulled, list) else [pulled]) if hasattr(report, "get")
        ]
        if self.drift_baseline:
            reports = [r for r in reports if r.get("baseline_name") in (None, self.drift_baseline)]
        if not reports:
            missing.append(f"{where}: no report in this run")
            return []
        return [
            dict(event)
            for report in reports
            for event in (report.get("events") or ())
            if hasattr(event, "get") and event.get("kind")
        ]

    def _project_dir(self, node_config: Mapping[str, Any] | None) -> str | None:
        if self.project_dir:
            return self.project_dir
        if node_config:
            file_path = str(node_config.get("file_path") or "")
            relative = str(node_config.get("original_file_path") or "")
            if file_path and relative and file_path.endswith(relative) and os.path.isabs(file_path):
                return file_path[: -len(relative)].rstrip("/\\") or None
        if self.manifest_path:
            return str(Path(self.manifest_path).resolve().parent.parent)
        return None

    def _dispatch(self, incident: Incident, store: ArtifactStore | None) -> DispatchResult:
        from airflow_selfheal.config import get_settings
        from airflow_selfheal.hooks.airflow_api import dispatch_from_task

        dag_id = self.repair_dag_id or get_settings().repair_dag_id
        return dispatch_from_task(
            dag_id=dag_id, fingerprint=incident.fingerprint, conf=repair_conf(incident, store)
        )


send_selfheal_failure_notification = SelfhealFailureNotifier


# ---------------------------------------------------------------------------------------------------------------
# Pieces of the incident
# ---------------------------------------------------------------------------------------------------------------


def repair_conf(incident: Incident, store: ArtifactStore | None = None) -> dict[str, Any]:
    """
    The repair run's conf: the incident id, its fingerprint, where it is stored, and the incident itself.

    An incident too large for a conf (:data:`~airflow_selfheal.hooks.airflow_api.MAX_CONF_BYTES`) is left out, with
    ``incident_truncated`` set: the repair DAG then reads it from ``incident_path``.

    :param incident: the classified incident.
    :param store: the artifacts store holding it, for ``incident_path``.
    :return: the conf.
    """
    from airflow_selfheal.hooks.airflow_api import MAX_CONF_BYTES
    from airflow_selfheal.records.incidents import INCIDENTS_FOLDER

    relative = f"{INCIDENTS_FOLDER}/{incident.incident_id}/incident.json"
    conf: dict[str, Any] = {
        "incident_id": incident.incident_id,
        "fingerprint": incident.fingerprint,
        "incident_path": str(store.path(relative)) if store is not None else relative,
        "incident": incident.to_dict(),
    }
    # Headroom for the dispatcher's own encoding of the same dict.
    if len(json.dumps(conf).encode("utf-8")) > MAX_CONF_BYTES - 1024:
        conf["incident"] = None
        conf["incident_truncated"] = True
    return conf


def failure_page(incident: Incident) -> Page:
    """
    The failed-run notification: "dbt run failed in <env>: model stg_orders (missing_column)".

    :param incident: the classified incident.
    :return: the page, deduplicated by the fingerprint; its summary lines are the detail.
    """
    from airflow_selfheal.core.pages.render import Page, format_lines

    triage = dict(incident.triage or {})
    failure_class = str(triage.get("failure_class", "unclassified"))
    if incident.nodes:
        first = incident.nodes[0]
        subject = f"{first.resource_type} {first.name}"
        if len(incident.nodes) > 1:
            subject += f" and {len(incident.nodes) - 1} more"
    else:
        subject = f"task {incident.task_id or 'unknown'}"
    lines = [str(triage.get("summary") or "No error text was captured.")]
    root_cause = triage.get("root_cause") or {}
    if root_cause:
        lines.append(f"Root cause: {root_cause.get('message')}")
    if triage.get("action"):
        lines.append(f"Recommended action: {triage['action']}. {triage.get('description', '')}".strip())
    lines.append(
        f"Pipeline {incident.pipeline}, run {incident.run_id}, task {incident.task_id}, try {incident.try_number}"
    )
    if incident.blocked_nodes:
        names = ", ".join(node.name for node in incident.blocked_nodes[:10])
        more = len(incident.blocked_nodes) - 10
        lines.append(f"Blocked dbt nodes: {names}" + (f" and {more} more" if more > 0 else ""))
    lines.append(f"Incident {incident.incident_id}, failed at {incident.failed_at}")
    lines += [f"Missing: {note}" for note in incident.missing]
    return Page(
        title=f"dbt run failed in {incident.environment}: {subject} ({failure_class})",
        severity="error",
        dedup_key=incident.fingerprint,
        sections=(("Summary", format_lines(lines)),),
        details={
            "incident_id": incident.incident_id,
            "pipeline": incident.pipeline,
            "run_id": incident.run_id,
            "task_id": incident.task_id,
            "try_number": incident.try_number,
            "node": incident.nodes[0].unique_id if incident.nodes else None,
            "failure_class": failure_class,
            "action": triage.get("action"),
            "error_code": triage.get("error_code"),
            "environment": incident.environment,
            "git_sha": incident.git_sha,
        },
        source=f"airflow-selfheal ({incident.environment})",
        component=incident.nodes[0].unique_id if incident.nodes else incident.task_id,
        group=incident.pipeline,
    )


def _captured_run_results(
    store: ArtifactStore | None, prefix: str | None, missing: list[str]
) -> list[dict[str, Any]]:
    """The failed results of the captured ``run_results.json``; a note in ``missing`` when there are none."""
    from airflow_selfheal.records.incidents import FAILED_STATUSES

    if store is None or prefix is None:
        missing.append("run_results.json not read: no artifacts key for this try")
        return []
    location = f"{prefix}/run_results.json"
    try:
        text = store.path(location).read_text()
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


def _captured_freshness(
    store: ArtifactStore | None, prefix: str | None, unique_id: str | None
) -> dict[str, Any] | None:
    """The failed source's freshness facts from a captured ``sources.json`` (``dbt source freshness``), if any."""
    from airflow_selfheal.core.incident import freshness_facts

    if store is None or prefix is None:
        return None
    try:
        data = json.loads(store.path(f"{prefix}/{SOURCES_FILE}").read_text())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, OSError) as exc:
        log.warning("The captured %s is unreadable: %s", SOURCES_FILE, exc)
        return None
    return freshness_facts(data, unique_id) if isinstance(data, dict) else None


def _captured_compiled_sql(
    store: ArtifactStore | None,
    prefix: str | None,
    unique_id: str | None,
    result: Mapping[str, Any] | None,
    missing: list[str],
) -> str | None:
    if unique_id is None:
        return None
    if store is not None and prefix is not None:
        try:
            return str(store.path(f"{prefix}/compiled/{unique_id}.sql").read_text())
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


def _error_text(exception: Any, failed_results: Sequence[Mapping[str, Any]], missing: list[str]) -> str:
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


def _node_ref(
    unique_id: str, manifest: dict[str, Any] | None, node_config: Mapping[str, Any] | None
) -> DbtNodeRef:
    from airflow_selfheal.core.incident import DbtNodeRef
    from airflow_selfheal.core.manifest import downstream, node, upstream

    parts = unique_id.split(".")
    found = node(manifest, unique_id) if manifest is not None else None
    if found is not None and manifest is not None:
        return DbtNodeRef(
            unique_id=unique_id,
            resource_type=str(found.get("resource_type") or parts[0]),
            name=str(found.get("name") or (parts[2] if len(parts) > 2 else unique_id)),
            original_file_path=_text(found.get("original_file_path")),
            upstream=upstream(manifest, unique_id),
            downstream=downstream(manifest, unique_id),
        )
    if node_config and node_config.get("unique_id") == unique_id:
        depends_on = node_config.get("depends_on") or ()
        return DbtNodeRef(
            unique_id=unique_id,
            resource_type=_resource_type(node_config.get("resource_type")) or parts[0],
            name=str(node_config.get("name") or node_config.get("resource_name") or parts[-1]),
            original_file_path=_text(node_config.get("original_file_path")),
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


def _blocked_ref(config: Mapping[str, Any], manifest: dict[str, Any] | None) -> DbtNodeRef:
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
        original_file_path=_text(found.get("original_file_path") or config.get("original_file_path")),
    )


def _resource_type(value: Any) -> str | None:
    """``model`` from a cosmos ``DbtResourceType.MODEL``, its value, or its repr."""
    if value is None:
        return None
    text = str(getattr(value, "value", value))
    return text.rsplit(".", 1)[-1].lower() or None


def _test_name(manifest: dict[str, Any] | None, unique_id: str | None) -> str | None:
    if manifest is None or unique_id is None:
        return None
    from airflow_selfheal.core.manifest import node

    found = node(manifest, unique_id) or {}
    metadata = found.get("test_metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return str(name) if name else None


def _dag_id(values: Mapping[str, Any]) -> str | None:
    return _text(getattr(values.get("dag"), "dag_id", None))


def _dedup(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _connection_secrets(values: Mapping[str, Any]) -> list[str]:
    """The password and secret-named extras of the cosmos task's profile connection, when it has one."""
    task = values.get("task")
    mapping = getattr(getattr(task, "profile_config", None), "profile_mapping", None)
    return _secrets_of(getattr(mapping, "conn_id", None))


def _operator_connection_secrets(values: Mapping[str, Any]) -> list[str]:
    """The same for a non-dbt task's Snowflake connection (``snowflake_conn_id``), e.g. the drift check's."""
    return _secrets_of(getattr(values.get("task"), "snowflake_conn_id", None))


def _secrets_of(conn_id: Any) -> list[str]:
    if not isinstance(conn_id, str) or not conn_id:
        return []
    try:
        from airflow.providers.common.compat.sdk import BaseHook

        from airflow_selfheal.core.redaction import is_secret_key

        connection = BaseHook.get_connection(conn_id)
        secrets = [connection.password] if connection.password else []
        extra = connection.extra_dejson
        secrets += [str(value) for name, value in extra.items() if is_secret_key(str(name)) and value]
    except Exception as exc:
        log.debug("Could not read connection %s to redact its secrets: %s", conn_id, exc)
        return []
    return secrets


_MANIFEST_CACHE: dict[tuple[str, int, int], dict[str, Any]] = {}


def _load_manifest_cached(path: str) -> dict[str, Any]:
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


@lru_cache(maxsize=16)
def _head_sha(project_dir: str) -> str | None:
    from airflow_selfheal.hooks.git import head_sha

    return head_sha(project_dir)
