"""Loading a repair run's incident."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_selfheal.hooks.artifacts import ArtifactStore
from airflow_selfheal.repair.triage import load_incident
from tests.support.incidents import make_incident


class TestLoadIncident:
    def test_from_conf(self) -> None:
        incident = make_incident()
        conf = {
            "incident_id": incident["incident_id"],
            "fingerprint": incident["fingerprint"],
            "incident": incident,
        }
        assert load_incident(conf) == incident

    def test_from_incident_path_when_truncated(self, tmp_path: Any) -> None:
        incident = make_incident()
        store = ArtifactStore(root=f"file://{tmp_path}", conn_id="")
        relative = f"incidents/{incident['incident_id']}/incident.json"
        store.create_json(relative, incident)
        conf = {"incident_id": incident["incident_id"], "incident": None, "incident_path": relative}
        assert load_incident(conf, store) == incident
        assert load_incident({**conf, "incident_path": str(tmp_path / relative)}) == incident

    def test_mismatched_conf_is_refused(self) -> None:
        incident = make_incident()
        with pytest.raises(ValueError, match="incident_id"):
            load_incident({"incident_id": "inc-other", "incident": incident})
        with pytest.raises(ValueError, match="neither"):
            load_incident({})
