"""Names split into parts and quoted, and the clone names an incident gets."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
import sqlglot

from airflow_selfheal.core.clone_sql import (
    MAX_IDENTIFIER_LENGTH,
    clone_name,
    clone_table,
    name_parts,
    parse_clone_name,
    split_qualified,
)

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


class TestQuoting:
    @pytest.mark.parametrize(
        ("name", "parts"),
        [
            pytest.param("demo.raw.orders", ("DEMO", "RAW", "ORDERS"), id="folds"),
            pytest.param('"My.Db" . raw."x""y"', ("My.Db", "RAW", 'x"y'), id="quoted-dots-and-quotes"),
            pytest.param("  demo  ", ("DEMO",), id="spaces"),
        ],
    )
    def test_split(self, name: str, parts: tuple[str, ...]) -> None:
        assert split_qualified(name) == parts

    def test_stored_parts_are_quoted_not_parsed(self) -> None:
        hostile = 'RAW"; DROP DATABASE PROD; --'
        sql = clone_table(("C", hostile, "T"), ("DEMO", hostile, "T"))
        assert sql == (
            'CREATE TABLE "C"."RAW""; DROP DATABASE PROD; --"."T" CLONE "DEMO"."RAW""; DROP DATABASE PROD; --"."T"'
        )
        assert len(sqlglot.parse(sql, read="snowflake")) == 1

    @pytest.mark.parametrize(
        ("name", "fragment"),
        [
            pytest.param("demo; drop database prod", "not a valid unquoted", id="statement"),
            pytest.param('"demo"; drop database prod', "unexpected ';'", id="after-quote"),
            pytest.param("demo..orders", "empty name part", id="empty-part"),
            pytest.param('"demo', "unterminated", id="unterminated"),
            pytest.param("demo.raw", "must be DATABASE.SCHEMA.TABLE", id="too-few-parts"),
        ],
    )
    def test_bad_names_are_refused(self, name: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            clone_table("C.RAW.T", name)

    def test_nul_in_stored_part_is_refused(self) -> None:
        with pytest.raises(ValueError, match="invalid identifier"):
            name_parts(("C", "a\x00b"), 2)


class TestCloneName:
    def test_example(self) -> None:
        assert (
            clone_name("DEMO", "inc-0123abcd", created_at=T0)
            == "DEMO__SELFHEAL_INC_0123ABCD__20260101T100000Z"
        )

    @pytest.mark.parametrize(
        ("prefix", "incident_id"),
        [
            pytest.param("DEMO", "inc-3f2a9c0d4e5b6a71", id="real-id"),
            pytest.param("my-db", "inc/0123 x", id="odd-characters"),
            pytest.param("1DB", "x", id="prefix-starts-with-digit"),
            pytest.param("D" * 300, "i" * 400, id="too-long"),
            pytest.param('"; drop database prod; --', "inc'; drop", id="hostile"),
        ],
    )
    def test_valid_unquoted_and_bounded(self, prefix: str, incident_id: str) -> None:
        name = clone_name(prefix, incident_id, created_at=T0)
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", name)
        assert len(name) <= MAX_IDENTIFIER_LENGTH
        parsed = parse_clone_name(name)
        assert parsed is not None
        assert parsed.created_at == T0

    def test_round_trip(self) -> None:
        parsed = parse_clone_name(clone_name("DEMO", "inc-0123abcd", created_at=T0))
        assert parsed is not None
        assert (parsed.prefix, parsed.incident, parsed.created_at) == ("DEMO", "INC_0123ABCD", T0)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            pytest.param("inc-0001", "inc-0002", id="two-incidents"),
            pytest.param("inc/a", "inc?a", id="lossy-ids-get-a-hash"),
            pytest.param("x" * 300 + "1", "x" * 300 + "2", id="truncated-ids-get-a-hash"),
        ],
    )
    def test_distinct_incidents_get_distinct_names(self, first: str, second: str) -> None:
        assert clone_name("DEMO", first, created_at=T0) != clone_name("DEMO", second, created_at=T0)

    def test_same_incident_later_is_a_new_name(self) -> None:
        later = T0 + timedelta(seconds=1)
        assert clone_name("DEMO", "inc-1", created_at=T0) != clone_name("DEMO", "inc-1", created_at=later)

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("DEMO", id="prod"),
            pytest.param("PROD_DB", id="prod-underscore"),
            pytest.param("DEMO__SELFHEAL_INC_1", id="no-stamp"),
            pytest.param("demo__selfheal_inc_1__20260101T100000Z", id="lower-case"),
            pytest.param("DEMO__SELFHEAL_INC_1__20261399T100000Z", id="impossible-date"),
            pytest.param('DEMO__SELFHEAL_INC_1__20260101T100000Z"; DROP DATABASE DEMO', id="suffix"),
            pytest.param("DEMO_SELFHEAL_INC_1_20260101T100000Z", id="single-underscores"),
        ],
    )
    def test_non_clone_names_do_not_parse(self, name: str) -> None:
        assert parse_clone_name(name) is None

    def test_naive_created_at_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            clone_name("DEMO", "inc-1", created_at=datetime(2026, 1, 1))

    def test_empty_incident_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no letters or digits"):
            clone_name("DEMO", "--", created_at=T0)
