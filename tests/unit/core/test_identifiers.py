from __future__ import annotations

import pytest

from airflow_selfheal.core.identifiers import normalize_identifier, qualified, quote_identifier


class TestIdentifiers:
    @pytest.mark.parametrize(
        ("raw", "stored"),
        [
            pytest.param("orders", "ORDERS", id="folds-unquoted"),
            pytest.param("Raw_2$", "RAW_2$", id="dollar-and-digits"),
            pytest.param('"MixedCase"', "MixedCase", id="quoted-keeps-case"),
            pytest.param('"a""b"', 'a"b', id="escaped-quote"),
        ],
    )
    def test_normalize(self, raw: str, stored: str) -> None:
        assert normalize_identifier(raw) == stored

    def test_unquoted_injection_is_refused(self) -> None:
        with pytest.raises(ValueError, match="not a valid unquoted Snowflake identifier"):
            normalize_identifier("orders; drop table x")

    def test_quote_escapes_embedded_quotes(self) -> None:
        assert quote_identifier('we"ird') == '"we""ird"'
        assert qualified("DEMO", "RAW", "ORDERS") == '"DEMO"."RAW"."ORDERS"'

    def test_nul_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid identifier"):
            quote_identifier("a\x00b")
