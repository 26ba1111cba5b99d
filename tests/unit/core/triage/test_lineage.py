"""The relations a failed node reads, from the manifest's parent map."""

from __future__ import annotations

from airflow_selfheal.core.triage import lineage_relations

MANIFEST = {
    "nodes": {
        "model.rides.stg_trips": {
            "resource_type": "model",
            "schema": "staging",
            "name": "stg_trips",
            "alias": "stg_trips",
        },
        "model.rides.fct_rides": {
            "resource_type": "model",
            "schema": "marts",
            "name": "fct_rides",
            "alias": "rides",
        },
        "test.rides.unique_fct_rides_trip_id.abc": {"resource_type": "test", "schema": "tests", "name": "u"},
        "seed.rides.zones": {"resource_type": "seed", "schema": "seeds", "name": "zones", "alias": "zones"},
    },
    "sources": {
        "source.rides.raw.trips": {
            "resource_type": "source",
            "schema": "raw",
            "name": "trips",
            "identifier": "TRIP_LOG",
        },
        "source.rides.raw.stations": {"resource_type": "source", "schema": "raw", "name": "stations"},
    },
    "parent_map": {
        "test.rides.unique_fct_rides_trip_id.abc": ["model.rides.fct_rides"],
        "model.rides.fct_rides": ["model.rides.stg_trips", "seed.rides.zones"],
        "model.rides.stg_trips": ["source.rides.raw.trips"],
        "source.rides.raw.trips": [],
        "source.rides.raw.stations": [],
        "seed.rides.zones": [],
    },
}


class TestLineageRelations:
    def test_a_test_reads_what_its_model_reads_transitively(self) -> None:
        relations = lineage_relations(MANIFEST, ["test.rides.unique_fct_rides_trip_id.abc"])

        assert relations == ["MARTS.RIDES", "RAW.TRIP_LOG", "SEEDS.ZONES", "STAGING.STG_TRIPS"]

    def test_a_model_reads_its_source_by_identifier(self) -> None:
        assert lineage_relations(MANIFEST, ["model.rides.stg_trips"]) == ["RAW.TRIP_LOG"]

    def test_without_manifest_nothing_is_known(self) -> None:
        assert lineage_relations(None, ["model.rides.stg_trips"]) == []

    def test_depends_on_is_used_without_a_parent_map(self) -> None:
        manifest = {
            "nodes": {"model.p.m": {"resource_type": "model", "depends_on": {"nodes": ["source.p.raw.t"]}}},
            "sources": {"source.p.raw.t": {"resource_type": "source", "schema": "RAW", "name": "t"}},
        }

        assert lineage_relations(manifest, ["model.p.m"]) == ["RAW.T"]
