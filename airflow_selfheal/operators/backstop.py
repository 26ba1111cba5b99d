"""The backstop: find failed dbt tasks that never reported an incident, and report them.

A task killed by the kernel (SIGKILL, out of memory) runs no ``on_failure_callback``, so its failure creates no
incident and starts no repair run. A small scheduled check closes that gap. Task code on Airflow 3 has no
metadata-DB access, so it reads the task instances through the api-server's public REST API:

1. ``GET /api/v2/dags/{dag_id}/dagRuns/~/taskInstances?state=failed&end_date_gte=...`` lists the failed task
   instances; those whose ``operator``/``operator_name`` contains ``Dbt`` (cosmos' ``DbtRunLocalOperator``,
   ``DbtBuildLocalOperator``...) are dbt tasks;
2. a dbt task whose ``(dag_id, run_id, task_id, map_index, try_number)`` has no incident occurrence is an
   orphan;
3. for each orphan, the tail of its log (``GET .../taskInstances/{task_id}/logs/{try_number}``) becomes the
   error text of an incident noted ``on_failure_callback never ran (task killed?)``; it is classified (the
   supervisor's "Process terminated by signal. Likely out of memory error (OOM)" is ``resource``), stored as an
   occurrence, and the repair DAG is started through :class:`~airflow_selfheal.hooks.airflow_api.RestDispatcher`, whose
   deterministic run id makes a second start a no-op.

The stored occurrence is what makes the next check skip the task, so running the backstop twice reports once.
The REST reads go through :class:`~airflow_selfheal.hooks.airflow_api.AirflowApiClient`.

.. code-block:: python

    from airflow_selfheal.dags.backstop import build_backstop_dag

    backstop_dag = build_backstop_dag(airflow_conn_id="airflow_api", dag_ids=["shop_pipeline"])
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_selfheal.hooks.airflow_api import BackstopError, DispatchError, client_from_connection

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow.sdk import Context

    from airflow_selfheal.hooks.airflow_api import AirflowApiClient
    from airflow_selfheal.records.incidents import IncidentStore

log = logging.getLogger(__name__)

MISSING_CALLBACK_NOTE = "on_failure_callback never ran (task killed?)"
DBT_OPERATOR_MARKER = "Dbt"
# Enough for the classifier (it reads the first and last 20 000 characters) and for a responder.
LOG_TAIL_CHARS = 20_000
# The api-server caps a page at ``[api] maximum_page_limit`` (100 by default); more pages are fetched.
PAGE_SIZE = 100
MAX_PAGES = 100
DEFAULT_GRACE = timedelta(minutes=2)
NOTE_CHARS = 500
SOURCE_GROUP = "::group::Log message source details"


# ---------------------------------------------------------------------------------------------------------------
# Finding orphans
# ---------------------------------------------------------------------------------------------------------------


def is_dbt_task(task_instance: Mapping[str, Any]) -> bool:
    """
    Whether a REST task instance ran a dbt operator: its ``operator`` or ``operator_name`` contains ``Dbt``.

    :param task_instance: one item of the REST ``task_instances`` list.
    :return: True for cosmos' ``DbtRunLocalOperator``, ``DbtTestLocalOperator``, ``DbtBuildLocalOperator``...
    """
    return any(
        DBT_OPERATOR_MARKER in str(task_instance.get(field) or "") for field in ("operator", "operator_name")
    )


def occurrence_key_name(task_instance: Mapping[str, Any]) -> str:
    """
    The occurrence file name the failure callback would have written for this task instance.

    The same name as :func:`airflow_selfheal.records.incidents.occurrence_name` gives the incident of that try.

    :param task_instance: one item of the REST ``task_instances`` list.
    :return: ``<run_id>__<task_id>__<try>.json`` (``__m<map_index>`` before the try if mapped).
    """
    from airflow_selfheal.records.incidents import safe_segment

    parts = [safe_segment(task_instance.get("dag_run_id")), safe_segment(task_instance.get("task_id"))]
    map_index = task_instance.get("map_index", -1)
    if map_index not in (-1, None):
        parts.append(f"m{map_index}")
    parts.append(safe_segment(task_instance.get("try_number")))
    return "__".join(parts) + ".json"


def _identity(record: Mapping[str, Any], dag_key: str, run_key: str) -> tuple[str, str, str, int, int]:
    map_index = record.get("map_index")
    try_number = record.get("try_number")
    return (
        str(record.get(dag_key)),
        str(record.get(run_key)),
        str(record.get("task_id")),
        map_index if isinstance(map_index, int) else -1,
        try_number if isinstance(try_number, int) else -1,
    )


def recorded_tries(store: IncidentStore, candidates: Sequence[Mapping[str, Any]]) -> set[tuple[Any, ...]]:
    """
    Which of ``candidates`` already have an incident occurrence.

    Occurrence file names are compared first, so only records that may match are read. A record is read as
    :class:`~airflow_selfheal.records.incidents.IncidentStore` reads it, schema version checked. One that cannot
    be read (corrupt, or written by a newer release) is logged with its location and recovery command and counts
    as recorded: a record under the try's name means its callback ran, and reporting the try again would start
    a second repair. Once the record is moved aside, the next check reports the try.

    :param store: the incident store.
    :param candidates: REST task instances.
    :return: the ``(dag_id, run_id, task_id, map_index, try_number)`` of those recorded.
    """
    from airflow_selfheal.core.schema import RecordVersionError
    from airflow_selfheal.hooks.artifacts import ArtifactCorruptError
    from airflow_selfheal.records.incidents import INCIDENTS_FOLDER

    names = {occurrence_key_name(candidate) for candidate in candidates}
    recorded: set[tuple[Any, ...]] = set()
    if not names:
        return recorded
    artifacts = store.store
    for incident_id in artifacts.folders(INCIDENTS_FOLDER):
        folder = f"{INCIDENTS_FOLDER}/{incident_id}/occurrences"
        for name in artifacts.list(folder):
            if name not in names:
                continue
            relative = f"{folder}/{name}"
            try:
                record = _read_occurrence(store, relative)
            except FileNotFoundError:
                continue  # moved aside since it was listed
            except (ArtifactCorruptError, RecordVersionError) as exc:
                log.warning("Backstop: an occurrence is unreadable, so its try counts as recorded: %s", exc)
                # The name says which run, task and try; the candidates with that name are those tries.
                recorded.update(
                    _identity(candidate, "dag_id", "dag_run_id")
                    for candidate in candidates
                    if occurrence_key_name(candidate) == name
                )
                continue
            recorded.add(_identity(record, "pipeline", "run_id"))
    return recorded


def _read_occurrence(store: IncidentStore, relative: str) -> dict[str, Any]:
    """One occurrence record, schema version checked; :class:`ArtifactCorruptError` when it is not one."""
    from airflow_selfheal.core.schema import check

    artifacts = store.store
    try:
        return check(artifacts.read_json(relative), "occurrence", artifacts.url(relative))
    except ValueError as exc:
        raise artifacts.corrupt(relative, f"is not an occurrence object ({exc})") from exc


def _failed_task_instances(
    client: AirflowApiClient, dag_id: str, since: datetime
) -> Iterator[dict[str, Any]]:
    path = f"/api/v2/dags/{quote(dag_id, safe='~')}/dagRuns/~/taskInstances"
    for page in range(MAX_PAGES):
        params = {
            "state": "failed",
            "end_date_gte": since.isoformat(),
            "order_by": "end_date",
            "limit": PAGE_SIZE,
            "offset": page * PAGE_SIZE,
        }
        body = client.get_json(path, params)
        items = body.get("task_instances") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise BackstopError(f"GET {path} answered no task_instances list")
        yield from (item for item in items if isinstance(item, dict))
        total = body.get("total_entries")
        if len(items) < PAGE_SIZE or (isinstance(total, int) and (page + 1) * PAGE_SIZE >= total):
            return
    log.warning(
        "More than %s failed task instances of %s since %s; the rest wait",
        MAX_PAGES * PAGE_SIZE,
        dag_id,
        since,
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def select_orphans(
    task_instances: Sequence[Mapping[str, Any]],
    *,
    recorded: set[tuple[Any, ...]],
    since: datetime,
    settled_before: datetime | None = None,
) -> list[dict[str, Any]]:
    """
    The failed dbt task instances, ended in the window, that no incident occurrence records; pure.

    :param task_instances: REST task instances.
    :param recorded: identities already recorded (see :func:`recorded_tries`).
    :param since: ignore those that ended before this time.
    :param settled_before: ignore those that ended after this time, whose callback may still be running.
    :return: the orphans, oldest first, without duplicates.
    """
    orphans: dict[tuple[Any, ...], dict[str, Any]] = {}
    for task_instance in task_instances:
        ended = _parse_time(task_instance.get("end_date"))
        if str(task_instance.get("state")) != "failed" or not is_dbt_task(task_instance) or ended is None:
            continue
        if ended < since or (settled_before is not None and ended > settled_before):
            continue
        identity = _identity(task_instance, "dag_id", "dag_run_id")
        if identity not in recorded:
            orphans.setdefault(identity, dict(task_instance))
    return sorted(orphans.values(), key=lambda item: str(item.get("end_date")))


def find_orphan_failures(
    client: AirflowApiClient,
    *,
    since: datetime,
    dag_ids: Sequence[str] | None,
    store: IncidentStore,
    grace: timedelta = timedelta(0),
) -> list[dict[str, Any]]:
    """
    Failed dbt task instances ended since ``since`` that have no incident occurrence.

    :param client: the api-server client.
    :param since: the start of the window (timezone-aware; naive is taken as UTC).
    :param dag_ids: the pipeline DAGs to check; None for every DAG the user may read.
    :param store: the incident store.
    :param grace: skip task instances that ended less than this long ago: their callback may still be writing.
    :return: the orphans as REST task instance dicts (``dag_id``, ``dag_run_id``, ``task_id``, ``map_index``,
        ``try_number``, ``end_date``, ``operator``...).
    """
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    failed = [item for dag_id in (dag_ids or ["~"]) for item in _failed_task_instances(client, dag_id, since)]
    candidates = [item for item in failed if is_dbt_task(item)]
    return select_orphans(
        candidates,
        recorded=recorded_tries(store, candidates),
        since=since,
        settled_before=datetime.now(timezone.utc) - grace,
    )


# ---------------------------------------------------------------------------------------------------------------
# Reporting them
# ---------------------------------------------------------------------------------------------------------------


def render_log(body: Any) -> tuple[str, list[str]]:
    """
    The text of a REST log answer, ``{"content": [...], "continuation_token": ...}``, and its source details.

    Structured entries (``{"timestamp", "event", "level", ...}``) become ``LEVEL event key=value...`` lines,
    so that the supervisor's ``signal_name=SIGKILL`` and an exception's ``error_detail`` stay readable. The
    ``::group::Log message source details`` block says where the api-server looked for the log (and, when it
    found none, why: "Could not read served logs: ..."); it is about the log, not the task, so it is returned
    apart and never classified.

    :param body: the decoded JSON answer.
    :return: the log text (empty when there is none) and the source detail lines.
    """
    content = body.get("content") if isinstance(body, dict) else None
    if not isinstance(content, list):
        return "", []
    lines: list[str] = []
    sources: list[str] = []
    in_sources = False
    for entry in content:
        event = entry.get("event") if isinstance(entry, dict) else entry
        if str(event).startswith(SOURCE_GROUP):
            in_sources = True
            continue
        if in_sources:
            if str(event).startswith("::endgroup::"):
                in_sources = False
            else:
                sources.append(str(event))
            continue
        if not isinstance(entry, dict):
            lines.append(str(entry))
            continue
        level = entry.get("level")
        head = " ".join(
            str(part) for part in (level.upper() if isinstance(level, str) else None, event) if part
        )
        extras = [
            f"{key}={value if isinstance(value, str) else json.dumps(value, default=str)}"
            for key, value in entry.items()
            if key not in ("timestamp", "event", "level", "error_detail", "sources")
        ]
        lines.append(" ".join([head, *extras]).strip())
        for error in entry.get("error_detail") or ():
            if isinstance(error, dict):
                lines.append(f"{error.get('exc_type')}: {error.get('exc_value')}")
    return "\n".join(line for line in lines if line), sources


def fetch_log_tail(
    client: AirflowApiClient, task_instance: Mapping[str, Any], *, limit: int = LOG_TAIL_CHARS
) -> tuple[str, str | None]:
    """
    The last ``limit`` characters of a task try's log, unredacted (the incident redacts it).

    :param client: the api-server client.
    :param task_instance: a REST task instance.
    :param limit: the most characters kept.
    :return: the text and None, or an empty text and a redacted note saying why there is none.
    """
    from airflow_selfheal.core.redaction import redact

    path = "/api/v2/dags/{}/dagRuns/{}/taskInstances/{}/logs/{}".format(
        *(
            quote(str(task_instance.get(key)), safe="")
            for key in ("dag_id", "dag_run_id", "task_id", "try_number")
        )
    )
    params = {"map_index": task_instance.get("map_index", -1), "full_content": "true"}
    try:
        text, sources = render_log(client.get_json(path, params))
    except BackstopError as exc:
        return "", redact(f"task log unavailable ({exc})")[:NOTE_CHARS]
    if not text.strip():
        detail = "; ".join(sources)
        return "", redact(f"task log empty{f' ({detail})' if detail else ''}")[:NOTE_CHARS]
    if len(text) > limit:
        text = f"…[{len(text) - limit} earlier characters not kept]…\n" + text[-limit:]
    return text, None


def backstop(
    client: AirflowApiClient,
    *,
    since: datetime,
    dag_ids: Sequence[str] | None = None,
    store: IncidentStore | None = None,
    repair_dag_id: str | None = None,
    environment: str | None = None,
    dispatch: bool = True,
    grace: timedelta = timedelta(0),
) -> dict[str, Any]:
    """
    Report every orphaned dbt failure: incident, triage, occurrence, repair run.

    One orphan's failure (a log that cannot be read, a dispatch refused) is recorded in its entry and does not
    stop the others.

    :param client: the api-server client; it also starts the repair DAG.
    :param since: the start of the window.
    :param dag_ids: the pipeline DAGs to check; None for all.
    :param store: the incident store; defaults to the configured artifacts root.
    :param repair_dag_id: the repair DAG; defaults to ``[selfheal] repair_dag_id``.
    :param environment: the environment name; defaults to ``[selfheal] environment``.
    :param dispatch: whether to start the repair DAG.
    :param grace: see :func:`find_orphan_failures`.
    :return: ``since``, ``checked_dag_ids``, ``orphans`` (count), ``incidents`` (one entry per orphan with
        ``incident_id``, ``fingerprint``, ``dag_id``, ``run_id``, ``task_id``, ``map_index``, ``try_number``,
        ``failure_class``, ``new_incident``, ``dispatch`` and ``errors``); JSON-serialisable.
    """
    from airflow_selfheal.config import get_settings
    from airflow_selfheal.core.incident import build_incident
    from airflow_selfheal.core.triage import classify
    from airflow_selfheal.notifications.failure import repair_conf
    from airflow_selfheal.records.incidents import IncidentStore, occurrence_record

    store = store or IncidentStore()
    settings = get_settings()
    orphans = find_orphan_failures(client, since=since, dag_ids=dag_ids, store=store, grace=grace)
    entries = []
    for orphan in orphans:
        text, log_note = fetch_log_tail(client, orphan)
        map_index = orphan.get("map_index")
        try_number = orphan.get("try_number")
        incident = build_incident(
            pipeline=str(orphan["dag_id"]),
            run_id=str(orphan.get("dag_run_id")),
            task_id=str(orphan.get("task_id")),
            map_index=map_index if isinstance(map_index, int) else -1,
            try_number=try_number if isinstance(try_number, int) else None,
            nodes=(),
            error=text,
            failed_at=_parse_time(orphan.get("end_date")) or datetime.now(timezone.utc),
            environment=environment or settings.environment,
            missing=[MISSING_CALLBACK_NOTE, *([log_note] if log_note else [])],
        )
        incident = incident.with_triage(classify(incident.error).to_dict())
        entry: dict[str, Any] = {
            "incident_id": incident.incident_id,
            "fingerprint": incident.fingerprint,
            "dag_id": incident.pipeline,
            "run_id": incident.run_id,
            "task_id": incident.task_id,
            "map_index": incident.map_index,
            "try_number": incident.try_number,
            "failure_class": (incident.triage or {}).get("failure_class"),
            "new_incident": None,
            "dispatch": None,
            "errors": [],
        }
        try:
            entry["new_incident"] = store.save(incident, occurrence_record(incident, source="backstop"))
        except Exception as exc:
            entry["errors"].append(f"could not store the incident: {type(exc).__name__}: {exc}")
        if dispatch:
            try:
                result = client.dispatch(
                    dag_id=repair_dag_id or settings.repair_dag_id,
                    fingerprint=incident.fingerprint,
                    conf=repair_conf(incident),
                )
                entry["dispatch"] = result.to_dict()
            except DispatchError as exc:
                entry["errors"].append(f"could not start the repair DAG: {exc}")
        log.info(
            "Backstop: %s.%s try %s had no incident; incident %s (%s), repair run %s",
            incident.pipeline,
            incident.task_id,
            incident.try_number,
            incident.incident_id,
            entry["failure_class"],
            (entry["dispatch"] or {}).get("run_id"),
        )
        entries.append(entry)
    return {
        "since": since.isoformat(),
        "checked_dag_ids": list(dag_ids) if dag_ids else None,
        "orphans": len(orphans),
        "incidents": entries,
    }


# ---------------------------------------------------------------------------------------------------------------
# The operator
# ---------------------------------------------------------------------------------------------------------------


class IncidentBackstopOperator(BaseOperator):
    """
    Find failed dbt tasks with no incident (killed before their callback ran) and report them.

    .. code-block:: python

        IncidentBackstopOperator(
            task_id="find_orphan_failures", airflow_conn_id="airflow_api", dag_ids=["shop_pipeline"]
        )

    :param airflow_conn_id: ``http`` connection whose host is the api-server's base URL; login/password (or
        an extra ``token``) when the api-server needs them. (templated)
    :param lookback: how far back to look for failed task instances.
    :param dag_ids: the pipeline DAGs to check; None for all. (templated)
    :param repair_dag_id: the repair DAG; defaults to ``[selfheal] repair_dag_id``.
    :param grace: skip failures younger than this: their own callback may still be reporting them.
    :param kwargs: passed to ``BaseOperator``.
    """

    template_fields: Sequence[str] = ("airflow_conn_id", "dag_ids")

    def __init__(
        self,
        *,
        airflow_conn_id: str,
        lookback: timedelta = timedelta(hours=6),
        dag_ids: list[str] | None = None,
        repair_dag_id: str | None = None,
        grace: timedelta = DEFAULT_GRACE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(airflow_conn_id, str) or not airflow_conn_id:
            raise ValueError(f"airflow_conn_id must be a non-empty string, got {airflow_conn_id!r}")
        if not isinstance(lookback, timedelta) or lookback <= timedelta(0):
            raise ValueError(f"lookback must be a positive timedelta, got {lookback!r}")
        if not isinstance(grace, timedelta) or grace < timedelta(0) or grace >= lookback:
            raise ValueError(f"grace must be a timedelta >= 0 and shorter than lookback, got {grace!r}")
        if dag_ids is not None and (
            isinstance(dag_ids, str) or not all(isinstance(dag_id, str) and dag_id for dag_id in dag_ids)
        ):
            raise ValueError(f"dag_ids must be a list of non-empty DAG ids or None, got {dag_ids!r}")
        if repair_dag_id is not None and (not isinstance(repair_dag_id, str) or not repair_dag_id):
            raise ValueError(f"repair_dag_id must be a non-empty string or None, got {repair_dag_id!r}")
        self.airflow_conn_id = airflow_conn_id
        self.lookback = lookback
        self.dag_ids = None if dag_ids is None else list(dag_ids)
        self.repair_dag_id = repair_dag_id
        self.grace = grace

    def execute(self, context: Context) -> dict[str, Any]:
        """
        Run the backstop over the last ``lookback``.

        :param context: the task context.
        :return: the summary of :func:`backstop`, for XCom.
        """
        since = datetime.now(timezone.utc) - self.lookback
        summary = backstop(
            client_from_connection(self.airflow_conn_id),
            since=since,
            dag_ids=self.dag_ids,
            repair_dag_id=self.repair_dag_id,
            grace=self.grace,
        )
        self.log.info("Backstop since %s: %s orphaned dbt failure(s) reported", since, summary["orphans"])
        return summary
