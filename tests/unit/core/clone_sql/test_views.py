"""View DDL: the references it makes to prod, and its text retargeted at a clone."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.clone_sql import find_prod_references, retarget_view_ddl, scan_prod_references

REALISTIC_VIEW = """
create or replace secure view ANALYTICS.ORDER_FACTS copy grants comment = 'orders with customers'
as
with recent as (
    select * from PROD_DB.RAW.ORDERS where ORDER_DATE > dateadd(day, -30, current_date())
)
select r.ORDER_ID, c.EMAIL, PROD_DB.UTIL.MASK(c.EMAIL) as MASKED, 'PROD_DB.RAW.SECRET' as NOTE
from recent r
join ANALYTICS.Y c on c.CUSTOMER_ID = r.CUSTOMER_ID
join "prod_db".RAW.OTHER o on o.ID = r.ORDER_ID
join PROD_DB..LEGACY l on l.ID = r.ORDER_ID
join OTHER_DB.RAW.PAYMENTS p on p.ORDER_ID = r.ORDER_ID
-- PROD_DB.RAW.IN_A_COMMENT
"""


class TestProdReferences:
    def test_brief_example(self) -> None:
        ddl = "create or replace view X as select * from PROD_DB.RAW.ORDERS join ANALYTICS.Y on true"
        assert find_prod_references(ddl, "PROD_DB") == ["PROD_DB.RAW.ORDERS"]

    def test_realistic_view(self) -> None:
        scan = scan_prod_references(REALISTIC_VIEW, "PROD_DB")
        # Relative names, the CTE, another database, a quoted lower-case namesake, a string and a comment are
        # not references; the function call and the double-dot (PUBLIC) form are.
        assert scan.references == ("PROD_DB.PUBLIC.LEGACY", "PROD_DB.RAW.ORDERS", "PROD_DB.UTIL.MASK")
        assert scan.parsed is True

    def test_the_views_own_name_is_not_a_reference(self) -> None:
        ddl = "create view PROD_DB.ANALYTICS.V as select * from RAW.ORDERS"
        assert find_prod_references(ddl, "PROD_DB") == []

    def test_four_part_column_is_a_reference(self) -> None:
        ddl = "create view V as select PROD_DB.RAW.ORDERS.ID from PROD_DB.RAW.ORDERS"
        assert find_prod_references(ddl, "PROD_DB") == ["PROD_DB.RAW.ORDERS"]

    def test_quoted_case_sensitive_prod_database(self) -> None:
        ddl = 'create view V as select * from "prod_db".raw.orders join PROD_DB.RAW.X on true'
        assert find_prod_references(ddl, "prod_db") == ["prod_db.RAW.ORDERS"]

    def test_unparseable_ddl_falls_back_to_regex_and_says_so(self) -> None:
        ddl = "create view V as select * from prod_db.raw.orders where ((( and PROD_DB..LEGACY"
        scan = scan_prod_references(ddl, "PROD_DB")
        assert scan.parsed is False
        assert scan.error
        assert scan.references == ("PROD_DB.PUBLIC.LEGACY", "PROD_DB.RAW.ORDERS")

    def test_regex_fallback_does_not_match_longer_names(self) -> None:
        ddl = "create view V as select * from XPROD_DB.RAW.A join PROD_DB_2.RAW.B where ((("
        assert scan_prod_references(ddl, "PROD_DB").references == ()

    def test_stand_in_view_definition_has_no_database(self) -> None:
        # What the embedded stand-in stores in INFORMATION_SCHEMA.VIEWS for a view created as DEMO.RAW.ORDERS.
        ddl = "CREATE VIEW ANALYTICS.V_ORDERS AS SELECT * FROM RAW.ORDERS WHERE (STATUS = 'placed');"
        assert find_prod_references(ddl, "DEMO") == []


class TestRetargetViewDdl:
    def test_points_view_and_references_at_the_clone(self) -> None:
        ddl = "create view X as select * from PROD_DB.RAW.ORDERS o join ANALYTICS.Y y on o.ID = y.ID join Z on true"
        rewritten = retarget_view_ddl(
            ddl, source_database="PROD_DB", target_database="C", view_schema="ANALYTICS", view_name="X"
        )
        assert rewritten == (
            'CREATE OR REPLACE VIEW "C"."ANALYTICS"."X" AS SELECT * FROM "C".RAW.ORDERS AS o '
            'JOIN "C".ANALYTICS.Y AS y ON o.ID = y.ID JOIN "C"."ANALYTICS".Z ON TRUE'
        )

    def test_realistic_view_no_longer_reads_prod(self) -> None:
        rewritten = retarget_view_ddl(
            REALISTIC_VIEW,
            source_database="PROD_DB",
            target_database="PROD_DB__SELFHEAL_INC_1__20260101T100000Z",
            view_schema="ANALYTICS",
            view_name="ORDER_FACTS",
        )
        assert find_prod_references(rewritten, "PROD_DB") == []
        assert rewritten.startswith(
            'CREATE OR REPLACE SECURE VIEW "PROD_DB__SELFHEAL_INC_1__20260101T100000Z"."ANALYTICS"."ORDER_FACTS"'
        )
        assert "FROM recent AS r" in rewritten  # the CTE is not qualified
        assert "OTHER_DB.RAW.PAYMENTS" in rewritten  # another database is left alone
        assert '"prod_db".RAW.OTHER' in rewritten  # a different (case-sensitive) database too
        assert "'PROD_DB.RAW.SECRET'" in rewritten  # string literals are data

    def test_column_list_is_kept(self) -> None:
        rewritten = retarget_view_ddl(
            "create view V (A, B) as select 1, 2",
            source_database="P",
            target_database="C",
            view_schema="S",
            view_name="V",
        )
        assert rewritten == 'CREATE OR REPLACE VIEW "C"."S"."V" (A, B) AS SELECT 1, 2'

    @pytest.mark.parametrize(
        ("ddl", "fragment"),
        [
            pytest.param("create table T as select 1", "not a single CREATE VIEW", id="not-a-view"),
            pytest.param("create view V as select 1; drop database P", "not a single CREATE VIEW", id="two"),
            pytest.param("create view V as select (((", "does not parse", id="garbage"),
        ],
    )
    def test_refuses_what_it_cannot_rewrite(self, ddl: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment):
            retarget_view_ddl(ddl, source_database="P", target_database="C", view_schema="S", view_name="V")
