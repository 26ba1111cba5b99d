"""Operators that snapshot raw source schemas and report drift against the accepted baseline.

The cause of most runtime failures in a dbt pipeline is an upstream schema change. Running
:class:`SchemaDriftCheckOperator` before the dbt task group names that change ("raw.orders lost column
CUSTOMER_EMAIL.") before anyone opens a log; :class:`SchemaSnapshotOperator` after a green build records
what "good" looked like.

The operators stay thin: capturing a snapshot is :mod:`airflow_selfheal.hooks.schemas`, the page on-call receives is
:mod:`airflow_selfheal.core.pages.drift`, and delivering it is :mod:`airflow_selfheal.notifications.delivery`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, BaseOperator

from airflow_selfheal.core.drift import DriftPolicy, SchemaSnapshot, diff_snapshots
from airflow_selfheal.core.pages.drift import drift_page
from airflow_selfheal.hooks.schemas import capture_snapshot, connection_database, resolve_targets

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_selfheal.core.drift import DriftReport
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook
    from airflow_selfheal.records.baselines import BaselineStore

ACCEPT_MODES = ("if_missing", "always", "never")


class _SchemaOperator(BaseOperator):
    template_fields: Sequence[str] = ("baseline_name", "manifest_path", "tables")

    def __init__(
        self,
        *,
        baseline_name: str,
        snowflake_conn_id: str = "snowflake_default",
        manifest_path: str | None = None,
        tables: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not manifest_path and not tables:
            raise ValueError(f"{type(self).__name__}: give `manifest_path` (dbt sources) or `tables`")
        self.baseline_name = baseline_name
        self.snowflake_conn_id = snowflake_conn_id
        self.manifest_path = manifest_path
        self.tables = list(tables) if tables else None

    def _hook(self) -> SelfhealSnowflakeHook:
        from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

        return SelfhealSnowflakeHook(snowflake_conn_id=self.snowflake_conn_id)

    def _baselines(self) -> BaselineStore:
        from airflow_selfheal.records.baselines import BaselineStore

        return BaselineStore(self.baseline_name)

    def _capture(self, hook: SelfhealSnowflakeHook) -> tuple[SchemaSnapshot, list[tuple[str, str, str]]]:
        targets = resolve_targets(
            manifest_path=self.manifest_path, tables=self.tables, default_database=connection_database(hook)
        )
        snapshot = capture_snapshot(hook, targets)
        self.log.info(
            "Captured %s tables in %s schemas with %s metadata queries",
            len(snapshot.tables),
            len({(d, s) for d, s, _ in targets}),
            hook.metadata_queries,
        )
        return snapshot, targets


class SchemaSnapshotOperator(_SchemaOperator):
    """
    Capture the columns, types and nullability of the raw source tables and record them as a baseline version.

    Place it after the dbt task group: the snapshot then describes the schemas of the last green build.
    Acceptance is explicit: by default a snapshot becomes the baseline only when none exists yet; a changed
    schema is recorded in the history but accepted only through ``accept="always"``, the CLI
    (``airflow-selfheal drift accept``) or a promoted repair.

    .. code-block:: python

        SchemaSnapshotOperator(
            task_id="snapshot_sources",
            baseline_name="shop_raw",
            snowflake_conn_id="snowflake_default",
            manifest_path="/opt/dbt/shop/target/manifest.json",
        )

    :param baseline_name: name of the baseline history (templated).
    :param snowflake_conn_id: Snowflake connection.
    :param manifest_path: dbt manifest whose declared sources are watched (templated).
    :param tables: explicit ``DB.SCHEMA.TABLE`` names instead of the manifest's sources (templated).
    :param accept: ``if_missing`` (default), ``always`` or ``never``.
    :return: the version id, whether it was accepted, and counts (XCom).
    """

    def __init__(self, *, accept: str = "if_missing", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if accept not in ACCEPT_MODES:
            raise ValueError(f"accept must be one of {ACCEPT_MODES}, got {accept!r}")
        self.accept = accept

    def execute(self, context: Context) -> dict[str, Any]:
        """Capture, record, and accept per ``accept``."""
        hook = self._hook()
        snapshot, _ = self._capture(hook)
        baselines = self._baselines()
        current = baselines.current()
        unchanged = current is not None and current[1].get("content_hash") == snapshot.content_hash
        if unchanged and current is not None:
            self.log.info("Schemas unchanged since baseline %s; nothing recorded", current[0])
            version, accepted = current[0], False
        else:
            version = baselines.record(snapshot.to_dict(), snapshot.content_hash)
            accepted = self.accept == "always" or (self.accept == "if_missing" and current is None)
            if accepted:
                who = f"{self.dag_id}.{self.task_id} ({context['run_id']})"
                reason = "first baseline" if current is None else "accept='always'"
                baselines.accept(version, accepted_by=who, reason=reason)
                self.log.info("Accepted schema baseline %s for %r (%s)", version, self.baseline_name, reason)
            else:
                self.log.warning(
                    "Schemas differ from the accepted baseline %s; recorded %s without accepting it. "
                    "Accept it with `airflow-selfheal drift accept %s %s`.",
                    current[0] if current else None,
                    version,
                    self.baseline_name,
                    version,
                )
        return {
            "baseline_name": self.baseline_name,
            "version": version,
            "accepted": accepted,
            "unchanged": unchanged,
            "content_hash": snapshot.content_hash,
            "tables": len(snapshot.tables),
            "columns": sum(len(table.columns) for table in snapshot.tables),
            "metadata_queries": hook.metadata_queries,
        }


class SchemaDriftCheckOperator(_SchemaOperator):
    """
    Compare the raw source schemas with the accepted baseline and report drift events.

    Notifications (Slack, and PagerDuty at warning severity) go out once per unique set of changes: the same
    drift seen again stays quiet, a changed set notifies again.

    .. code-block:: python

        SchemaDriftCheckOperator(
            task_id="check_source_drift",
            baseline_name="shop_raw",
            manifest_path="/opt/dbt/shop/target/manifest.json",
            policy="warn",
            slack_conn_id="slack_data_alerts",
        )

    :param baseline_name: name of the baseline history (templated).
    :param snowflake_conn_id: Snowflake connection.
    :param manifest_path: dbt manifest whose declared sources are watched (templated).
    :param tables: explicit ``DB.SCHEMA.TABLE`` names instead of the manifest's sources (templated).
    :param policy: ``fail`` the task on drift, ``warn`` (default), or only ``report``.
    :param slack_conn_id: ``slackwebhook`` connection to notify, or None.
    :param pagerduty_conn_id: ``pagerduty_events`` connection to notify, or None.
    :return: the drift report (XCom), with ``status``, ``headline``, ``fingerprint`` and ``events``.
    """

    def __init__(
        self,
        *,
        policy: DriftPolicy | str = DriftPolicy.WARN,
        slack_conn_id: str | None = None,
        pagerduty_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            self.policy = DriftPolicy(policy)
        except ValueError:
            choices = [member.value for member in DriftPolicy]
            raise ValueError(f"policy must be one of {choices}, got {policy!r}") from None
        self.slack_conn_id = slack_conn_id
        self.pagerduty_conn_id = pagerduty_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        """Capture, diff against the accepted baseline, notify once per set of changes, apply the policy."""
        hook = self._hook()
        snapshot, targets = self._capture(hook)
        current = self._baselines().current()
        baseline = SchemaSnapshot.from_dict(current[1]) if current else None
        report = diff_snapshots(baseline, snapshot, expected_tables=[f"{d}.{s}.{t}" for d, s, t in targets])
        result = {
            **report.to_dict(),
            "baseline_name": self.baseline_name,
            "baseline_version": current and current[0],
        }
        for event in report.breaking_events:
            self.log.warning("drift: %s", event.message)
        for event in report.non_breaking_events:
            self.log.info("non-breaking drift (not notified): %s", event.message)
        if report.status == "no_baseline":
            self.log.warning(
                "No accepted baseline %r yet: run SchemaSnapshotOperator after a green build, or "
                "`airflow-selfheal drift snapshot %s --accept`.",
                self.baseline_name,
                self.baseline_name,
            )
        if report.breaking_events:
            result["notification"] = self._notify(report, current[0] if current else None)
        if report.status == "drift_detected":
            message = f"{self.baseline_name}: {report.headline} [{report.fingerprint}]"
            if self.policy is DriftPolicy.FAIL:
                raise AirflowException(message + "\n" + "\n".join(e.message for e in report.breaking_events))
            if self.policy is DriftPolicy.WARN:
                self.log.warning(message)
            else:
                self.log.info(message)
        else:
            self.log.info("%s: %s", self.baseline_name, report.headline)
        return result

    def _notify(self, report: DriftReport, baseline_version: str | None) -> dict[str, Any]:
        if not (self.slack_conn_id or self.pagerduty_conn_id):
            return {"channels": {}, "duplicate": False, "dedup_key": report.fingerprint}
        from airflow_selfheal.hooks.artifacts import ArtifactStore
        from airflow_selfheal.notifications.delivery import deliver

        page = drift_page(self.baseline_name, report, baseline_version, pipeline=self.dag_id)
        outcome = deliver(
            page,
            slack_conn_id=self.slack_conn_id,
            pagerduty_conn_id=self.pagerduty_conn_id,
            store=ArtifactStore(),
            scope=f"drift/{self.baseline_name}",
        )
        return outcome.to_dict()
