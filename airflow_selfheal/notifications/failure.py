"""Turn a failed dbt task into an incident, start one repair run per fingerprint and notify on-call.

:class:`SelfhealFailureNotifier` is the ``on_failure_callback`` of a cosmos ``DbtTaskGroup`` (and of the tasks
around it, such as the drift check). It reads back the artifacts that
:func:`~airflow_selfheal.callbacks.capture.capture_dbt_artifacts` copied
(:mod:`~airflow_selfheal.notifications.failure_evidence`), builds and classifies the
:class:`~airflow_selfheal.core.incident.Incident` (correlated with this run's drift report, read from the drift
check's XCom), stores it with :class:`~airflow_selfheal.records.incidents.IncidentStore`, starts the repair DAG
with :func:`~airflow_selfheal.hooks.airflow_api.dispatch_from_task` and sends the failed-run page
(:func:`~airflow_selfheal.core.pages.failure.failure_page`).

It never raises into the task: every step is guarded and logged, and a step that fails leaves a note in the
incident's ``missing`` list instead of stopping the others.

.. code-block:: python

    from airflow_selfheal.callbacks.capture import capture_dbt_artifacts
    from airflow_selfheal.notifications.failure import SelfhealFailureNotifier

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
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import BaseNotifier

from airflow_selfheal.notifications import failure_evidence as evidence

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping, Sequence

    import jinja2
    from airflow.sdk import Context

    from airflow_selfheal.core.incident import Incident
    from airflow_selfheal.hooks.airflow_api import DispatchResult
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.notifications.delivery import DeliveryReport

NOTIFICATION_SCOPE = "failures"


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
       exception), the artifacts ``capture_dbt_artifacts`` copied (run results, compiled SQL), the manifest's
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
                outcome.dispatch = self._dispatch(incident)
            except Exception as exc:
                outcome.errors.append(self._error("start the repair DAG", exc))
            network += time.perf_counter() - began

        if self.slack_conn_id or self.pagerduty_conn_id:
            began = time.perf_counter()
            try:
                from airflow_selfheal.core.pages.failure import failure_page
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
        key = evidence.task_key(values)
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

        prefix = None if key is None else evidence.artifact_prefix(key)
        failed_results = evidence.captured_run_results(store, prefix, missing)

        node_config = values.get("dbt_node_config")
        if not hasattr(node_config, "get"):
            node_config = None
            source = "taken from run_results.json" if failed_results else "unknown"
            missing.append(
                f"dbt_node_config missing from the context (not a cosmos dbt task): dbt node {source}"
            )

        unique_ids = list(
            dict.fromkeys(
                [str(result["unique_id"]) for result in failed_results if result.get("unique_id")]
                or ([str(node_config["unique_id"])] if node_config and node_config.get("unique_id") else [])
            )
        )
        # A task outside dbt (the drift check) that fails keeps every dbt task downstream of it from running.
        blocked_configs = [] if unique_ids else evidence.downstream_dbt_nodes(values.get("task"))
        manifest = (
            evidence.pipeline_manifest(self.manifest_path, store, prefix, missing)
            if unique_ids or blocked_configs
            else None
        )
        nodes = [evidence.node_ref(unique_id, manifest, node_config) for unique_id in unique_ids]
        blocked = [evidence.blocked_ref(config, manifest) for config in blocked_configs]

        freshness = evidence.captured_freshness(store, prefix, unique_ids[0] if unique_ids else None)
        if freshness and not unique_ids and freshness.get("unique_id"):
            unique_ids = [str(freshness["unique_id"])]
            nodes = [evidence.node_ref(unique_ids[0], manifest, node_config)]
        error = evidence.error_text(values.get("exception"), failed_results, missing)
        primary = nodes[0].unique_id if nodes else None
        primary_result = next((r for r in failed_results if r.get("unique_id") == primary), None)
        compiled_sql = evidence.captured_compiled_sql(store, prefix, primary, primary_result, missing)
        drift_events = evidence.drift_events(
            ti, key, drift_task_id=self.drift_task_id, drift_baseline=self.drift_baseline, missing=missing
        )
        dbt_project = evidence.dbt_project_dir(self.project_dir, node_config, self.manifest_path)
        secrets = (
            *self.secrets,
            *evidence.connection_secrets(values),
            *evidence.operator_connection_secrets(values),
        )
        # Notes can quote an exception's text; the incident redacts its free text but not its notes.
        missing = [redact(note, extra_secrets=secrets) for note in missing]

        ended = getattr(ti, "end_date", None)
        incident = build_incident(
            pipeline=(key.dag_id if key else None)
            or evidence.optional_text(getattr(values.get("dag"), "dag_id", None))
            or "unknown",
            run_id=key.run_id if key else evidence.optional_text(values.get("run_id")),
            task_id=key.task_id if key else None,
            map_index=key.map_index if key else -1,
            try_number=key.try_number if key else None,
            nodes=nodes,
            error=error,
            compiled_sql=compiled_sql,
            run_results_excerpt=failed_results,
            failed_at=ended if isinstance(ended, datetime) else datetime.now(timezone.utc),
            git_sha=None if dbt_project is None else evidence.git_sha(dbt_project),
            environment=self.environment or (settings.environment if settings else "dev"),
            missing=missing,
            secrets=secrets,
            freshness=freshness,
            blocked_nodes=blocked,
        )

        resource_type = nodes[0].resource_type if nodes else None
        test_name = evidence.generic_test_name(manifest, primary)
        triage_text = incident.error
        if resource_type == "test" and not test_name and "failure in test" not in triage_text.lower():
            # cosmos's exception names a failed test only as "<name>: Got 3 results"; dbt's log says it this way.
            triage_text = f"Failure in test {nodes[0].name}\n{triage_text}"
        triage = classify(
            triage_text,
            resource_type=resource_type,
            test_name=test_name,
            # ``dbt source freshness`` writes no run_results.json: its status is in sources.json.
            status=evidence.optional_text(
                primary_result.get("status") if primary_result else (freshness or {}).get("status")
            ),
            drift_events=drift_events,
            lineage=lineage_relations(manifest, unique_ids),
        )
        return incident.with_triage(triage.to_dict()), store

    def _dispatch(self, incident: Incident) -> DispatchResult:
        from airflow_selfheal.config import get_settings
        from airflow_selfheal.hooks.airflow_api import dispatch_from_task

        dag_id = self.repair_dag_id or get_settings().repair_dag_id
        return dispatch_from_task(dag_id=dag_id, fingerprint=incident.fingerprint, conf=repair_conf(incident))


send_selfheal_failure_notification = SelfhealFailureNotifier


def repair_conf(incident: Incident) -> dict[str, Any]:
    """
    The repair run's conf: the incident id, its fingerprint, where it is stored, and the incident itself.

    The failure notifier and the backstop (:mod:`airflow_selfheal.operators.backstop`) start the repair DAG with
    it. An incident too large for a conf (:data:`~airflow_selfheal.hooks.airflow_api.MAX_CONF_BYTES`) is left
    out, with ``incident_truncated`` set: the repair DAG then reads it from ``incident_path``.

    ``incident_path`` is relative to the artifacts root (``incidents/<incident_id>/incident.json``): the repair
    DAG reads it through its own store, which points at the same root whether that is a folder or ``s3://``.

    :param incident: the classified incident.
    :return: the conf.
    """
    from airflow_selfheal.hooks.airflow_api import MAX_CONF_BYTES
    from airflow_selfheal.records.incidents import INCIDENTS_FOLDER

    relative = f"{INCIDENTS_FOLDER}/{incident.incident_id}/incident.json"
    conf: dict[str, Any] = {
        "incident_id": incident.incident_id,
        "fingerprint": incident.fingerprint,
        "incident_path": relative,
        "incident": incident.to_dict(),
    }
    # Headroom for the dispatcher's own encoding of the same dict.
    if len(json.dumps(conf).encode("utf-8")) > MAX_CONF_BYTES - 1024:
        conf["incident"] = None
        conf["incident_truncated"] = True
    return conf
