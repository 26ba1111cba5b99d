"""The read-only guard as an allow-list: one bounded SELECT of the clone, built-in functions, FLATTEN at most."""

from __future__ import annotations

import logging

import pytest
import sqlglot
from hypothesis import given
from hypothesis import strategies as st
from sqlglot import exp

from airflow_selfheal.core.guards import PROBE_ROW_LIMIT, ReadOnlyViolation, read_only_sql

CLONE = "CLONE"


@pytest.fixture(autouse=True)
def _quiet_sqlglot(caplog: pytest.LogCaptureFixture) -> None:
    # sqlglot warns when it falls back to a Command (CALL, GET, EXPLAIN); the guard refuses those anyway.
    caplog.set_level(logging.ERROR, logger="sqlglot")


def outer_limit(sql: str) -> int | None:
    """The outermost LIMIT (or FETCH FIRST) of one statement, as a number; None if there is none."""
    statement = sqlglot.parse_one(sql, read="snowflake")
    limit = statement.args.get("limit")
    if isinstance(limit, exp.Limit):
        return int(limit.expression.this)
    if isinstance(limit, exp.Fetch):
        return int(limit.args["count"].this)
    return None


# (sql, a fragment of the refusal). Every family of issue 13 and the classic tricks.
HOSTILE = [
    # query results and history of other users, and other table functions
    pytest.param("select * from table(result_scan(last_query_id()))", "RESULT_SCAN", id="result-scan"),
    pytest.param(
        "select * from table(result_scan('01b2c3d4-0000-1111-0000-000000000000'))",
        "RESULT_SCAN",
        id="result-scan-id",
    ),
    pytest.param(
        "SeLeCt * FrOm TaBlE(ReSuLt_ScAn(LaSt_QuErY_iD()))", "RESULT_SCAN", id="result-scan-mixed-case"
    ),
    pytest.param(
        "select * from table(information_schema.query_history())", "QUERY_HISTORY", id="query-history"
    ),
    pytest.param(
        "select * from table(CLONE.information_schema.query_history_by_user(user_name => 'ADMIN'))",
        "QUERY_HISTORY_BY_USER",
        id="query-history-of-the-clone",
    ),
    pytest.param(
        "select QUERY_TEXT from table(CLONE.INFORMATION_SCHEMA.QUERY_HISTORY_BY_WAREHOUSE())",
        "other users' statements",
        id="query-history-by-warehouse",
    ),
    pytest.param(
        "select * from table(CLONE.information_schema.login_history())", "LOGIN_HISTORY", id="logins"
    ),
    pytest.param(
        "select * from table(CLONE.information_schema.copy_history(table_name => 'X', start_time => current_timestamp()))",
        "COPY_HISTORY",
        id="copy-history",
    ),
    pytest.param("select * from table(generator(rowcount => 1000000000000))", "GENERATOR", id="generator"),
    pytest.param("select * from table(split_to_table('a,b', ','))", "SPLIT_TO_TABLE", id="split-to-table"),
    pytest.param(
        "select * from table(infer_schema(location => '@s', file_format => 'f'))",
        "INFER_SCHEMA",
        id="infer-schema",
    ),
    pytest.param("select * from table(CLONE.RAW.MY_UDTF(1))", "CLONE.RAW.MY_UDTF", id="udtf"),
    pytest.param(
        "select * from CLONE.RAW.ORDERS o, lateral CLONE.RAW.MY_UDTF(o.ID)", "MY_UDTF", id="lateral-udtf"
    ),
    pytest.param(
        "select * from table(flatten(input => parse_json('[1]'))) f, table(result_scan(last_query_id())) r",
        "RESULT_SCAN",
        id="flatten-then-result-scan",
    ),
    pytest.param(
        "select (select count(*) from table(result_scan(last_query_id()))) from CLONE.RAW.ORDERS",
        "RESULT_SCAN",
        id="result-scan-in-a-scalar-subquery",
    ),
    pytest.param(
        "select * from table(rеsult_scan(last_query_id()))", "table function", id="cyrillic-result-scan"
    ),
    # statements that are not queries
    pytest.param("show users", "SHOW statement", id="show-users"),
    pytest.param("SHOW GRANTS TO ROLE ACCOUNTADMIN", "COMMAND statement", id="show-grants"),
    pytest.param("show tables in database CLONE", "SHOW statement", id="show-tables"),
    pytest.param("describe table CLONE.RAW.ORDERS", "DESCRIBE statement", id="describe"),
    pytest.param("desc user admin", "does not parse", id="desc-user"),
    pytest.param("list @~", "LISTSTAGE statement", id="list"),
    pytest.param("ls @CLONE.RAW.STAGE", "LISTSTAGE statement", id="ls"),
    pytest.param("call CLONE.RAW.CLEANUP()", "COMMAND statement", id="call-procedure"),
    pytest.param(
        "execute immediate 'drop table CLONE.RAW.ORDERS'", "COMMAND statement", id="execute-immediate"
    ),
    pytest.param(
        "execute immediate $$begin drop table CLONE.RAW.ORDERS; end$$",
        "COMMAND statement",
        id="execute-dollars",
    ),
    pytest.param("use role accountadmin", "USE statement", id="use-role"),
    pytest.param("use database PROD", "USE statement", id="use-database"),
    pytest.param("set x = (select 1)", "SET statement", id="set"),
    pytest.param("unset x", "statement", id="unset"),
    pytest.param("alter session set query_tag = 'x'", "ALTER statement", id="alter-session"),
    pytest.param("alter session set statement_timeout_in_seconds = 0", "ALTER statement", id="timeout-off"),
    pytest.param("explain select * from CLONE.RAW.ORDERS", "COMMAND statement", id="explain"),
    pytest.param("begin transaction", "TRANSACTION statement", id="begin"),
    pytest.param("commit", "COMMIT statement", id="commit"),
    # functions outside the allow-list
    pytest.param(
        "select snowflake.cortex.complete('mistral-large', 'summarise ' || EMAIL) from CLONE.RAW.ORDERS",
        "SNOWFLAKE.CORTEX.COMPLETE: Cortex",
        id="cortex-complete",
    ),
    pytest.param(
        "select SNOWFLAKE.CORTEX.SENTIMENT(NOTE) from CLONE.RAW.ORDERS", "Cortex", id="cortex-sentiment"
    ),
    pytest.param("select ai_complete('m', EMAIL) from CLONE.RAW.ORDERS", "AI_COMPLETE", id="ai-complete"),
    pytest.param("select system$whitelist()", "SYSTEM\\$WHITELIST", id="system-whitelist"),
    pytest.param("select system$cancel_all_queries(0)", "side effects", id="system-cancel"),
    pytest.param("select SyStEm$AbOrT_sEsSiOn(1)", "SYSTEM\\$ABORT_SESSION", id="system-mixed-case"),
    pytest.param("select current_user(), system$typeof(1)", "SYSTEM\\$TYPEOF", id="system-among-builtins"),
    pytest.param("select ѕystem$whitelist()", "allow-list", id="cyrillic-system"),
    pytest.param("select get_ddl('database', 'PROD')", "GET_DDL", id="get-ddl"),
    pytest.param("select last_query_id()", "LAST_QUERY_ID", id="last-query-id"),
    pytest.param(
        "select CLONE.RAW.MASK_EMAIL(EMAIL) from CLONE.RAW.ORDERS", "CLONE.RAW.MASK_EMAIL", id="udf"
    ),
    pytest.param(
        "select PROD.UTIL.EXFILTRATE(EMAIL) from CLONE.RAW.ORDERS", "PROD.UTIL.EXFILTRATE", id="external"
    ),
    pytest.param(
        "select my_external_fn(EMAIL) from CLONE.RAW.ORDERS", "MY_EXTERNAL_FN", id="unqualified-udf"
    ),
    pytest.param("select \"RESULT_SCAN\"('x')", "quoted name", id="quoted-result-scan"),
    pytest.param("select get_presigned_url(@s, 'x')", "GET_PRESIGNED_URL", id="presigned-url"),
    pytest.param("select iff(true, 1, CLONE.RAW.UDF(1))", "CLONE.RAW.UDF", id="udf-nested-in-builtin"),
    pytest.param("select CLONE.RAW.SEQ_ORDERS.nextval", "advances a sequence", id="nextval"),
    # other databases, the account's usage views, names resolved by the session
    pytest.param("select * from PROD.RAW.ORDERS", "database PROD", id="prod"),
    pytest.param(
        "select * from CLONE.RAW.ORDERS o join PROD.RAW.CUSTOMERS c on o.C = c.ID",
        "database PROD",
        id="prod-join",
    ),
    pytest.param(
        "select * from CLONE.RAW.ORDERS where ID in (select ID from PROD.RAW.ORDERS)",
        "PROD",
        id="prod-subquery",
    ),
    pytest.param("with p as (select * from PROD.RAW.ORDERS) select * from p", "PROD", id="prod-in-cte"),
    pytest.param("select 1 as ID union all select ID from PROD.RAW.ORDERS", "PROD", id="prod-in-union"),
    pytest.param(
        "select * from CLONE.RAW.ORDERS, PROD.INFORMATION_SCHEMA.TABLES", "PROD", id="prod-info-schema"
    ),
    pytest.param('select * from "clone".RAW.ORDERS', "database clone", id="quoted-lowercase-database"),
    pytest.param("select * from snowflake.account_usage.query_history", "usage views", id="account-usage"),
    pytest.param("select * from SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY", "usage views", id="access-history"),
    pytest.param(
        "select * from CLONE.RAW.ORDERS where exists (select 1 from snowflake.account_usage.users)",
        "usage views",
        id="account-usage-in-exists",
    ),
    pytest.param("select * from RAW.ORDERS", "without its database", id="schema-only"),
    pytest.param("select * from ORDERS", "without its database", id="bare-name"),
    pytest.param(
        "select * from information_schema.columns", "without its database", id="session-info-schema"
    ),
    pytest.param("select * from PROD..ORDERS", "not the name of a table", id="default-schema"),
    pytest.param("select * from identifier('CLONE.RAW.ORDERS')", "IDENTIFIER", id="identifier"),
    pytest.param("select * from identifier($tbl)", "IDENTIFIER", id="identifier-variable"),
    pytest.param("select $1 from @CLONE.RAW.STAGE", "stage", id="stage"),
    pytest.param("select $1 from @~/secrets.csv", "stage", id="user-stage"),
    pytest.param("with a as (select * from b), b as (select 1 as x) select * from a", "b:", id="cte-forward"),
    pytest.param("select * from (with x as (select 1) select * from x), x", "x:", id="cte-out-of-scope"),
    pytest.param(
        "select * from CLONE.RAW.ORDERS, lateral flatten(input => (select array_agg(X) from PROD.RAW.T))",
        "PROD.RAW.T",
        id="flatten-over-prod",
    ),
    pytest.param("(select * from PROD.RAW.ORDERS)", "PROD", id="parenthesised-prod"),
    # classic tricks
    pytest.param("select 1; drop table CLONE.RAW.ORDERS", "2 statements", id="second-statement"),
    pytest.param(
        "select 1 -- a comment\n; drop table CLONE.RAW.ORDERS", "2 statements", id="after-line-comment"
    ),
    pytest.param(
        "select 1 /* a comment */; delete from CLONE.RAW.ORDERS", "2 statements", id="after-block-comment"
    ),
    pytest.param("/* ; */ drop table CLONE.RAW.ORDERS", "DROP statement", id="comment-before-drop"),
    pytest.param("select ';'; drop table x", "2 statements", id="semicolon-in-string-and-out"),
    pytest.param("select $$;$$; drop table x", "2 statements", id="semicolon-in-dollars-and-out"),
    pytest.param("with x as (delete from CLONE.RAW.ORDERS) select 1", "contains DELETE", id="cte-deletes"),
    pytest.param(
        "insert into CLONE.RAW.ORDERS select * from CLONE.RAW.ORDERS", "INSERT statement", id="insert-select"
    ),
    pytest.param("update CLONE.RAW.ORDERS set A = 1", "UPDATE statement", id="update"),
    pytest.param("delete from CLONE.RAW.ORDERS", "DELETE statement", id="delete"),
    pytest.param("copy into CLONE.RAW.ORDERS from @s", "COPY statement", id="copy-into-table"),
    pytest.param(
        "copy into @s from (select * from CLONE.RAW.ORDERS)", "COPY statement", id="copy-into-stage"
    ),
    pytest.param("put file:///etc/passwd @~", "PUT statement", id="put"),
    pytest.param("get @~/x file:///tmp/", "COMMAND statement", id="get"),
    pytest.param("create temp table t as select 1", "CREATE statement", id="create-temp"),
    pytest.param("create temporary stage s", "CREATE statement", id="create-stage"),
    pytest.param(
        "merge into CLONE.RAW.ORDERS t using CLONE.RAW.X s on t.ID = s.ID when matched then delete",
        "MERGE statement",
        id="merge",
    ),
    pytest.param("grant ownership on database CLONE to role public", "GRANT statement", id="grant"),
    pytest.param("undrop table CLONE.RAW.ORDERS", "UNDROP statement", id="undrop"),
    pytest.param("truncate table CLONE.RAW.ORDERS", "TRUNCATETABLE statement", id="truncate"),
    pytest.param("DROP DATABASE clone", "DROP statement", id="drop"),
    pytest.param("select * into CLONE.RAW.X from CLONE.RAW.ORDERS", "contains INTO", id="select-into"),
    pytest.param("sеlect 1", "does not parse", id="cyrillic-select"),
    pytest.param("select 1；drop table x", "does not parse", id="fullwidth-semicolon"),
    pytest.param("ｓｅｌｅｃｔ 1", "does not parse", id="fullwidth-select"),
    pytest.param("", "0 statements", id="empty"),
    pytest.param("-- nothing", "0 statements", id="only-a-comment"),
    pytest.param("select from where", "does not parse", id="garbage"),
]

# Probe-like queries of the clone: all allowed, all returned with an outermost LIMIT of at most 20.
BENIGN = [
    pytest.param("select count(*) from CLONE.RAW.ORDERS", id="count"),
    pytest.param("select 1", id="constant"),
    pytest.param('select ID, EMAIL from "CLONE"."RAW"."ORDERS" where EMAIL is not null', id="quoted"),
    pytest.param("select * from clone.raw.orders", id="lower-case"),
    pytest.param(
        "select o.ID, c.NAME from CLONE.RAW.ORDERS o join CLONE.RAW.CUSTOMERS c on o.CUSTOMER_ID = c.ID",
        id="join",
    ),
    pytest.param(
        "select c.ID, count(o.ID) from CLONE.RAW.CUSTOMERS c left join CLONE.RAW.ORDERS o on o.CUSTOMER_ID = c.ID "
        "group by c.ID having count(o.ID) > 1",
        id="left-join-group-by",
    ),
    pytest.param("select * from CLONE.RAW.ORDERS o join CLONE.RAW.C c using (ID)", id="join-using"),
    pytest.param(
        "with recent as (select * from CLONE.RAW.ORDERS where ORDERED_AT > dateadd(day, -7, current_date())) "
        "select count(*) from recent",
        id="cte",
    ),
    pytest.param(
        "with a as (select ID from CLONE.RAW.ORDERS), b as (select ID from a where ID > 1) "
        "select * from b join a using (ID)",
        id="two-ctes",
    ),
    pytest.param(
        "with recursive r as (select 1 as n union all select n + 1 from r where n < 3) select * from r",
        id="recursive-cte",
    ),
    pytest.param(
        "select min(AMOUNT), max(AMOUNT), avg(AMOUNT), sum(AMOUNT), median(AMOUNT), stddev(AMOUNT), "
        "approx_count_distinct(EMAIL), count(distinct EMAIL), count_if(AMOUNT < 0), any_value(STATUS), "
        "listagg(STATUS, ',') within group (order by STATUS) from CLONE.RAW.ORDERS",
        id="aggregates",
    ),
    pytest.param(
        "select ID, row_number() over (partition by CUSTOMER_ID order by ORDERED_AT desc) as rn "
        "from CLONE.RAW.ORDERS qualify rn = 1",
        id="window-qualify",
    ),
    pytest.param(
        "select lag(AMOUNT) over (order by ORDERED_AT), lead(AMOUNT) over (order by ORDERED_AT), "
        "rank() over (order by AMOUNT), dense_rank() over (order by AMOUNT), ratio_to_report(AMOUNT) over () "
        "from CLONE.RAW.ORDERS",
        id="windows",
    ),
    pytest.param(
        "select iff(AMOUNT > 0, 'pos', 'neg'), coalesce(EMAIL, 'none'), nvl(EMAIL, ''), zeroifnull(AMOUNT), "
        "nullif(STATUS, ''), div0(AMOUNT, QTY) from CLONE.RAW.ORDERS",
        id="conditionals",
    ),
    pytest.param(
        "select ID::varchar, cast(AMOUNT as number(10, 2)), try_cast(CODE as integer), to_date(ORDERED_AT), "
        "to_varchar(ORDERED_AT, 'YYYY-MM') from CLONE.RAW.ORDERS",
        id="casts",
    ),
    pytest.param(
        "select o.ID, f.value::string from CLONE.RAW.ORDERS o, lateral flatten(input => o.TAGS) f",
        id="flatten",
    ),
    pytest.param(
        "select f.value from CLONE.RAW.ORDERS o, table(flatten(input => parse_json(o.PAYLOAD), path => 'items')) f",
        id="table-flatten",
    ),
    pytest.param(
        "select COLUMN_NAME, DATA_TYPE from CLONE.INFORMATION_SCHEMA.COLUMNS "
        "where TABLE_SCHEMA = 'RAW' and TABLE_NAME = 'ORDERS' order by ORDINAL_POSITION",
        id="information-schema-columns",
    ),
    pytest.param(
        "select TABLE_NAME, ROW_COUNT from clone.information_schema.tables where TABLE_SCHEMA = 'RAW'",
        id="information-schema-tables",
    ),
    pytest.param("select ID from CLONE.RAW.ORDERS union all select ID from CLONE.RAW.RETURNS", id="union"),
    pytest.param(
        "select ID from CLONE.RAW.ORDERS intersect select ID from CLONE.RAW.PAID except select ID from CLONE.RAW.X",
        id="intersect-except",
    ),
    pytest.param(
        "select case when STATUS in ('a', 'b') then 1 else 0 end, PAYLOAD:customer.email::string, PAYLOAD['id'] "
        "from CLONE.RAW.ORDERS",
        id="case-and-variant-paths",
    ),
    pytest.param(
        "select count(*), count(*) - count(EMAIL) from (select EMAIL from CLONE.RAW.ORDERS limit 100000) as s",
        id="null-counts-shape",
    ),
    pytest.param(
        "select lower(EMAIL), trim(NAME), split_part(EMAIL, '@', 2), regexp_like(EMAIL, '.+@.+'), length(NAME), "
        "concat(A, '-', B), A || B, hash(EMAIL), md5(EMAIL) from CLONE.RAW.ORDERS",
        id="strings",
    ),
    pytest.param(
        "select date_trunc('month', ORDERED_AT), datediff(day, ORDERED_AT, current_timestamp()), year(ORDERED_AT), "
        "extract(month from ORDERED_AT) from CLONE.RAW.ORDERS",
        id="dates",
    ),
    pytest.param(
        "select current_database(), current_schema(), current_role(), current_warehouse(), current_user",
        id="current-context",
    ),
    pytest.param(
        "select (select count(*) from CLONE.RAW.ORDERS) as n, (select max(ID) from CLONE.RAW.CUSTOMERS) as m",
        id="scalar-subqueries",
    ),
    pytest.param(
        "select * from CLONE.RAW.CUSTOMERS c where not exists "
        "(select 1 from CLONE.RAW.ORDERS o where o.CUSTOMER_ID = c.ID)",
        id="not-exists",
    ),
    pytest.param("select * from CLONE.RAW.ORDERS sample (10)", id="sample"),
    pytest.param("select * from values (1, 'a'), (2, 'b') as v(id, name)", id="values"),
    pytest.param("select * from CLONE.RAW.ORDERS pivot(sum(AMOUNT) for STATUS in ('a', 'b'))", id="pivot"),
    pytest.param("select /* evidence */ count(*) from CLONE.RAW.ORDERS -- trailing\n", id="comments"),
    pytest.param(
        "select ';' as semi, $$ drop table x; $$ as text from CLONE.RAW.ORDERS", id="strings-with-sql"
    ),
    pytest.param("select 1; -- trailing comment", id="trailing-semicolon"),
    pytest.param("select distinct STATUS from CLONE.RAW.ORDERS order by 1", id="distinct"),
    pytest.param("select * from CLONE.RAW.ORDERS limit 1000000", id="large-limit"),
    pytest.param("select * from CLONE.RAW.ORDERS limit all", id="limit-all"),
    pytest.param("select top 100 * from CLONE.RAW.ORDERS", id="top"),
    pytest.param("select * from CLONE.RAW.ORDERS order by ID fetch first 10 rows only", id="fetch-first"),
    pytest.param('select "count"(ID) from CLONE.RAW.ORDERS', id="quoted-builtin-comes-back-unquoted"),
]


class TestRefused:
    @pytest.mark.parametrize(("sql", "fragment"), HOSTILE)
    def test_hostile_queries_are_refused_naming_why(self, sql: str, fragment: str) -> None:
        with pytest.raises(ReadOnlyViolation, match=fragment):
            read_only_sql(sql, database=CLONE)

    def test_the_corpus_covers_every_family(self) -> None:
        assert len(HOSTILE) >= 60

    def test_system_functions_stay_refused_when_allowed(self) -> None:
        with pytest.raises(ReadOnlyViolation, match="side effects"):
            read_only_sql("select system$typeof(1)", database=CLONE, allowed_functions=["SYSTEM$TYPEOF"])

    def test_allowing_a_function_does_not_allow_it_as_a_table_function(self) -> None:
        with pytest.raises(ReadOnlyViolation, match="table function RESULT_SCAN"):
            read_only_sql(
                "select * from table(result_scan(last_query_id()))",
                database=CLONE,
                allowed_functions=["RESULT_SCAN", "LAST_QUERY_ID"],
            )

    def test_a_quoted_clone_name_is_exact(self) -> None:
        assert read_only_sql('select * from "clone".RAW.T', database='"clone"')
        with pytest.raises(ReadOnlyViolation, match="database CLONE"):
            read_only_sql("select * from clone.RAW.T", database='"clone"')

    @pytest.mark.parametrize(
        ("kwargs", "fragment"),
        [
            pytest.param({"database": "CLONE.RAW"}, "one database", id="not-a-database"),
            pytest.param({"database": "snowflake"}, "SNOWFLAKE", id="the-account-database"),
            pytest.param({"database": CLONE, "limit": 0}, "positive", id="no-rows"),
            pytest.param(
                {"database": CLONE, "allowed_functions": ["a b"]}, "not a function name", id="bad-name"
            ),
        ],
    )
    def test_bad_arguments_are_caller_errors(self, kwargs: dict[str, object], fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment) as raised:
            read_only_sql("select 1", **kwargs)  # type: ignore[arg-type]
        assert not isinstance(raised.value, ReadOnlyViolation)


class TestAllowed:
    @pytest.mark.parametrize("sql", BENIGN)
    def test_probe_like_queries_pass_with_a_limit_of_at_most_20(self, sql: str) -> None:
        safe_sql = read_only_sql(sql, database=CLONE)
        limit = outer_limit(safe_sql)
        assert limit is not None
        assert limit <= PROBE_ROW_LIMIT == 20
        assert read_only_sql(safe_sql, database=CLONE) == safe_sql  # what is sent passes as it is

    def test_the_corpus_is_probe_sized(self) -> None:
        assert len(BENIGN) >= 25

    @pytest.mark.parametrize(
        ("sql", "expected"),
        [
            pytest.param(
                "select * from CLONE.RAW.ORDERS", "SELECT * FROM CLONE.RAW.ORDERS LIMIT 20", id="added"
            ),
            pytest.param(
                "select * from CLONE.RAW.ORDERS limit 1000000",
                "SELECT * FROM CLONE.RAW.ORDERS LIMIT 20",
                id="lowered",
            ),
            pytest.param(
                "select * from CLONE.RAW.ORDERS limit 5 offset 10",
                "SELECT * FROM CLONE.RAW.ORDERS LIMIT 5 OFFSET 10",
                id="kept",
            ),
            pytest.param(
                "select * from CLONE.RAW.ORDERS limit null",
                "SELECT * FROM CLONE.RAW.ORDERS LIMIT 20",
                id="null",
            ),
            pytest.param(
                "select * from CLONE.RAW.ORDERS fetch first 500 rows only",
                "SELECT * FROM CLONE.RAW.ORDERS LIMIT 20",
                id="fetch-lowered",
            ),
            pytest.param(
                "select 1 union select 2 limit 50",
                "SELECT 1 UNION SELECT 2 LIMIT 20",
                id="set-operation-lowered",
            ),
            pytest.param(
                "with x as (select * from CLONE.RAW.ORDERS limit 100000) select count(*) from x",
                "WITH x AS (SELECT * FROM CLONE.RAW.ORDERS LIMIT 100000) SELECT COUNT(*) FROM x LIMIT 20",
                id="inner-limit-is-the-query's",
            ),
            pytest.param("(select 1)", "SELECT 1 LIMIT 20", id="parentheses"),
            pytest.param(
                "select 1 /* ; drop table x */ -- and more", "SELECT 1 LIMIT 20", id="comments-are-not-sent"
            ),
            pytest.param("select $$a;b$$", "SELECT 'a;b' LIMIT 20", id="dollar-string-as-a-literal"),
        ],
    )
    def test_the_limit_is_in_the_sql_sent(self, sql: str, expected: str) -> None:
        assert read_only_sql(sql, database=CLONE) == expected

    def test_a_larger_limit_for_a_metadata_read(self) -> None:
        sql = "select COLUMN_NAME from CLONE.INFORMATION_SCHEMA.COLUMNS limit 500"
        assert read_only_sql(sql, database=CLONE, limit=500) == (
            "SELECT COLUMN_NAME FROM CLONE.INFORMATION_SCHEMA.COLUMNS LIMIT 500"
        )

    @pytest.mark.parametrize(
        ("sql", "allowed"),
        [
            pytest.param(
                "select CLONE.RAW.MASK_EMAIL(EMAIL) from CLONE.RAW.ORDERS",
                "clone.raw.mask_email",
                id="qualified",
            ),
            pytest.param("select my_udf(EMAIL) from CLONE.RAW.ORDERS", "MY_UDF", id="unqualified"),
            pytest.param('select "myUdf"(EMAIL) from CLONE.RAW.ORDERS', '"myUdf"', id="quoted"),
            pytest.param(
                "select snowflake.cortex.sentiment(NOTE) from CLONE.RAW.ORDERS",
                "SNOWFLAKE.CORTEX.SENTIMENT",
                id="cortex",
            ),
        ],
    )
    def test_the_caller_allows_more_functions_by_name(self, sql: str, allowed: str) -> None:
        with pytest.raises(ReadOnlyViolation):
            read_only_sql(sql, database=CLONE)
        assert outer_limit(read_only_sql(sql, database=CLONE, allowed_functions=[allowed])) == 20

    def test_an_allowed_name_allows_that_name_only(self) -> None:
        with pytest.raises(ReadOnlyViolation, match="PROD.RAW.MASK_EMAIL"):
            read_only_sql(
                "select PROD.RAW.MASK_EMAIL(E)", database=CLONE, allowed_functions=["CLONE.RAW.MASK_EMAIL"]
            )

    def test_a_cte_may_shadow_a_table_name(self) -> None:
        sql = "with ORDERS as (select * from CLONE.RAW.ORDERS) select * from ORDERS"
        assert read_only_sql(sql, database=CLONE).endswith("FROM ORDERS LIMIT 20")


# ---------------------------------------------------------------------------------------------------------------
# Properties: compositions of benign pieces, and hostile fragments in them
# ---------------------------------------------------------------------------------------------------------------

TABLES = ["CLONE.RAW.ORDERS", '"CLONE"."RAW"."CUSTOMERS"', "clone.analytics.fct_orders", "CLONE.RAW.EVENTS"]
SCALARS = [
    "ID",
    "EMAIL",
    "iff(AMOUNT > 0, 1, 0)",
    "coalesce(EMAIL, 'none')",
    "AMOUNT::number(10, 2)",
    "try_cast(CODE as integer)",
    "lower(trim(EMAIL))",
    "date_trunc('day', ORDERED_AT)",
    "row_number() over (partition by ID order by ORDERED_AT)",
    "PAYLOAD:customer.id::string",
    "current_database()",
    "case when AMOUNT is null then 'missing' else 'ok' end",
]
AGGREGATES = [
    "count(*)",
    "count(distinct EMAIL)",
    "sum(AMOUNT)",
    "max(ORDERED_AT)",
    "count(*) - count(EMAIL)",
]
CONDITIONS = [
    "",
    "where ID > 0",
    "where EMAIL like '%@%'",
    "where ORDERED_AT >= dateadd(day, -1, current_date())",
]
LIMITS = ["", "limit 1", "limit 20", "limit 21", "limit 1000000", "limit all"]


@st.composite
def benign_queries(draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(TABLES))
    pool = draw(st.sampled_from([SCALARS, AGGREGATES]))
    columns = ", ".join(draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4)))
    core = f"select {columns} from {table} as t {draw(st.sampled_from(CONDITIONS))}"
    shape = draw(st.sampled_from(["plain", "cte", "subquery", "union", "flatten", "join"]))
    if shape == "cte":
        core = f"with base as ({core}) select * from base"
    elif shape == "subquery":
        core = f"select * from ({core}) as s"
    elif shape == "union":
        core = f"{core} union all {core}"
    elif shape == "flatten":
        core = f"select t.ID, f.value from {table} as t, lateral flatten(input => t.TAGS) as f"
    elif shape == "join":
        other = draw(st.sampled_from(TABLES))
        core = f"select t.ID, u.ID from {table} as t join {other} as u on t.ID = u.ID"
    return f"{core} {draw(st.sampled_from(LIMITS))}"


# Where a fragment goes: a select expression, a source, or around the query.
HOSTILE_EXPRESSIONS = [
    "snowflake.cortex.complete('m', EMAIL)",
    "system$cancel_all_queries(0)",
    "get_ddl('database', 'PROD')",
    "CLONE.RAW.MASK(EMAIL)",
    "ai_classify(EMAIL, ['a'])",
    '"RESULT_SCAN"(1)',
    "(select count(*) from PROD.RAW.ORDERS)",
    "(select max(QUERY_TEXT) from snowflake.account_usage.query_history)",
    "CLONE.RAW.SEQ.nextval",
]
HOSTILE_SOURCES = [
    "table(result_scan(last_query_id()))",
    "table(CLONE.information_schema.query_history())",
    "table(generator(rowcount => 1e12))",
    "PROD.RAW.ORDERS",
    "snowflake.account_usage.users",
    "RAW.ORDERS",
    "identifier('PROD.RAW.ORDERS')",
    "@CLONE.RAW.STAGE",
]
HOSTILE_WRAPPERS = [
    "{query}; drop table CLONE.RAW.ORDERS",
    "{query} -- hide\n; delete from CLONE.RAW.ORDERS",
    "with gone as (delete from CLONE.RAW.ORDERS) {query}",
    "insert into CLONE.RAW.ORDERS {query}",
    "create temporary table T as {query}",
    "copy into @CLONE.RAW.STAGE from ({query})",
]


@st.composite
def hostile_queries(draw: st.DrawFn) -> str:
    table = draw(st.sampled_from(TABLES))
    column = draw(st.sampled_from(SCALARS))
    where = draw(st.sampled_from(["fragment", "source", "wrapper"]))
    if where == "fragment":
        query = f"select {column}, {draw(st.sampled_from(HOSTILE_EXPRESSIONS))} from {table} as t"
    elif where == "source":
        query = f"select {column} from {table} as t, {draw(st.sampled_from(HOSTILE_SOURCES))} as h"
    else:
        query = draw(st.sampled_from(HOSTILE_WRAPPERS)).format(query=f"select {column} from {table} as t")
    if draw(st.booleans()):
        query = f"with base as ({query}) select * from base" if where != "wrapper" else query
    return query


class TestProperties:
    @given(benign_queries())
    def test_benign_compositions_stay_allowed_and_bounded(self, sql: str) -> None:
        safe_sql = read_only_sql(sql, database=CLONE)
        limit = outer_limit(safe_sql)
        assert limit is not None
        assert limit <= PROBE_ROW_LIMIT
        assert read_only_sql(safe_sql, database=CLONE) == safe_sql

    @given(hostile_queries())
    def test_hostile_fragments_in_benign_queries_are_always_refused(self, sql: str) -> None:
        with pytest.raises(ReadOnlyViolation):
            read_only_sql(sql, database=CLONE)

    @given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=500))
    def test_the_limit_sent_is_the_smaller_one(self, written: int, cap: int) -> None:
        sql = read_only_sql(f"select * from CLONE.RAW.ORDERS limit {written}", database=CLONE, limit=cap)
        assert outer_limit(sql) == min(written, cap)
