from __future__ import annotations

import pytest

from airflow_selfheal.core.drift import EVENT_KINDS, DriftEvent


class TestModel:
    def test_event_round_trip(self) -> None:
        event = DriftEvent(
            kind="column_type_changed", table="RAW.ORDERS", column="AMOUNT", old_type="A", new_type="B"
        )

        assert DriftEvent.from_dict(event.to_dict()) == event

    @pytest.mark.parametrize(
        ("fields", "match"),
        [
            pytest.param(
                {"kind": "column_moved", "table": "RAW.T"}, "kind must be one of", id="unknown-kind"
            ),
            pytest.param(
                {"kind": "column_renamed", "table": "RAW.T", "confidence": 1.5},
                "confidence",
                id="confidence-range",
            ),
        ],
    )
    def test_invalid_event_rejected(self, fields: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            DriftEvent(**fields)  # type: ignore[arg-type]

    def test_every_kind_has_a_message(self) -> None:
        messages = {
            kind: DriftEvent(kind=kind, table="RAW.T", column="C", new_type="DATE", new_table="RAW.U").message
            for kind in EVENT_KINDS
        }

        assert len(set(messages.values())) == len(EVENT_KINDS)
        assert all(message.startswith("raw.t") and message.endswith(".") for message in messages.values())
