"""An artifacts root written by 0.1.0 (``tests/data/records-0.1.0``) reads through today's readers, on both roots."""

from __future__ import annotations

import fnmatch
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_selfheal.core.drift import SchemaSnapshot
from airflow_selfheal.core.incident import build_incident
from airflow_selfheal.core.pages.render import Page
from airflow_selfheal.core.schema import CURRENT, RecordVersionError, check
from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.notifications import delivery
from airflow_selfheal.notifications.delivery import deliver, delivery_attempts
from airflow_selfheal.records.audit import AuditLog
from airflow_selfheal.records.baselines import BaselineStore
from airflow_selfheal.records.incidents import IncidentStore

FIXTURES = Path(__file__).parents[2] / "data" / "records-0.1.0"
INCIDENT = "inc-2ba62d39d6696f3a"
DRIFT_KEY = "drift-shop_raw-" + "d" * 64
FAILURE_KEY = "2ba62d39d6696f3aa7269f69e71fa40c1fcbfc0bc681e68988ddf1b0380744ee"
#: The kind of every record 0.1.0 wrote, by path pattern; a fixture matching none fails the test.
KINDS = {
    "incidents/*/incident.json": "incident",
    "incidents/*/occurrences/*.json": "occurrence",
    "audit/*/seq/*.json": "audit_claim",
    "audit/*/[0-9]*.json": "audit_entry",
    "baselines/*/snapshots/*.json": "baseline_snapshot",
    "baselines/*/accepted/*.json": "baseline_acceptance",
    "notifications/*/*.json": "page_marker",
    "notifications/*/*/*.json": "page_marker",
}


def fixture_files() -> list[str]:
    return sorted(
        path.relative_to(FIXTURES).as_posix() for path in FIXTURES.rglob("*.json") if path.is_file()
    )


def kind_of(relative: str) -> str:
    matches = [kind for pattern, kind in KINDS.items() if fnmatch.fnmatchcase(relative, pattern)]
    assert matches, f"{relative}: no reader is known for this fixture; add it to KINDS and to the tests"
    return matches[0]


@pytest.fixture
def old_store(artifact_store: ArtifactStore) -> ArtifactStore:
    """The 0.1.0 records, copied byte for byte to a fresh file:// or s3:// root."""
    for relative in fixture_files():
        assert artifact_store.create_bytes(relative, (FIXTURES / relative).read_bytes())
    return artifact_store


def test_the_fixtures_are_there() -> None:
    kinds = {kind_of(relative) for relative in fixture_files()}
    assert kinds == set(CURRENT) - {"page_claim", "page_outcome"}


@pytest.mark.parametrize("relative", fixture_files())
def test_every_record_is_version_1(relative: str) -> None:
    record = json.loads((FIXTURES / relative).read_text())
    assert "schema_version" not in record
    assert check(record, kind_of(relative), relative) == record


def test_the_incident_and_its_occurrences(old_store: ArtifactStore) -> None:
    incidents = IncidentStore(old_store)

    incident = incidents.get(INCIDENT)
    assert (incident.pipeline, incident.environment, incident.nodes[0].name) == (
        "shop_pipeline",
        "prod",
        "stg_orders",
    )
    assert incident.triage is not None
    assert [item.incident_id for item in incidents.list()] == [INCIDENT]
    occurrences = incidents.occurrences(INCIDENT)
    assert [(o["try_number"], o.get("source")) for o in occurrences] == [(1, None), (2, "backstop")]


def test_the_fingerprint_is_read_as_stored_not_recomputed(old_store: ArtifactStore) -> None:
    stored = old_store.read_json(f"incidents/{INCIDENT}/incident.json")
    incident = IncidentStore(old_store).get(INCIDENT)
    assert (incident.fingerprint, incident.error_signature) == (
        stored["fingerprint"],
        stored["error_signature"],
    )

    # Today's signature of the same error reads past the blank line 0.1.0 stopped at, so the next occurrence of
    # this failure is a new incident (and pages once more); the old one stays readable as it is.
    again = build_incident(
        pipeline=incident.pipeline,
        run_id="manual__2026-03-02T06:00:00+00:00",
        task_id=incident.task_id,
        try_number=1,
        nodes=incident.nodes,
        error=incident.error,
        failed_at=datetime(2026, 3, 2, 6, tzinfo=timezone.utc),
        environment=incident.environment,
    )
    assert again.error_signature.startswith(incident.error_signature)
    assert "line 1: ... order_id" in again.error_signature
    assert again.fingerprint != incident.fingerprint
    incidents = IncidentStore(old_store)
    assert incidents.save(again) is True
    assert [item.incident_id for item in incidents.list()] == [again.incident_id, INCIDENT]


def test_the_audit_trail(old_store: ArtifactStore) -> None:
    audit = AuditLog(INCIDENT, old_store)

    assert [entry["step"] for entry in audit.entries()] == [
        "triage",
        "clone",
        "validate",
        "page",
        "approve",
        "outcome",
    ]
    summary = audit.summary()
    assert (summary["outcome"], summary["approved_by"], summary["records"]) == ("resolved", "jane", 6)
    assert audit.render_text().startswith(f"{INCIDENT}: resolved after 5m01s, approved by jane")
    # A new record continues the 0.1.0 sequence.
    assert audit.record("rerun", "succeeded")["seq"] == 7


def test_the_baseline(old_store: ArtifactStore) -> None:
    baselines = BaselineStore("shop_raw", old_store)

    current = baselines.current()
    assert current is not None
    version, snapshot = current
    assert baselines.versions() == [version]
    assert [record["accepted_by"] for record in baselines.history()] == ["dag shop_pipeline"]
    rebuilt = SchemaSnapshot.from_dict(snapshot)
    assert rebuilt.content_hash == snapshot["content_hash"]
    assert [column.name for column in rebuilt.tables[0].columns][:2] == ["ORDER_ID", "CUSTOMER_ID"]


@pytest.mark.parametrize(
    ("scope", "key", "outcome"),
    [
        pytest.param("drift/shop_raw", DRIFT_KEY, {"slack": "sent", "pagerduty": "skipped"}, id="sent"),
        pytest.param("failures", FAILURE_KEY, None, id="claimed-by-a-worker-that-died"),
    ],
)
def test_a_delivery_marker_counts_as_sent(
    old_store: ArtifactStore,
    monkeypatch: pytest.MonkeyPatch,
    scope: str,
    key: str,
    outcome: dict[str, str] | None,
) -> None:
    (attempt,) = delivery_attempts(old_store, key, scope)
    assert attempt["attempt"] == 0
    assert (attempt["outcome"] or {}).get("channels") == outcome

    def never(*args: object) -> None:
        raise AssertionError("a key 0.1.0 marked was paged again")

    monkeypatch.setattr(delivery, "send_slack", never)
    page = Page(title="again", severity="warning", dedup_key=key)
    assert deliver(page, slack_conn_id="slack_ops", store=old_store, scope=scope).duplicate is True


def test_a_record_of_a_future_release_is_refused_clearly(old_store: ArtifactStore) -> None:
    relative = f"incidents/{'inc-' + 'f' * 16}/incident.json"
    record = {**old_store.read_json(f"incidents/{INCIDENT}/incident.json"), "schema_version": 99}
    old_store.create_json(relative, record)

    with pytest.raises(RecordVersionError) as excinfo:
        IncidentStore(old_store).list()
    message = str(excinfo.value)
    assert old_store.url(relative) in message
    assert "schema version 99" in message
    assert "reads up to version 1" in message
    assert "Upgrade airflow-selfheal" in message
