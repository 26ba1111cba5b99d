"""The guards: project-relative paths only, and read-only SQL only."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.guards import (
    ReadOnlyViolation,
    UnsafePathError,
    check_relative_path,
    read_only_sql,
)


class TestRelativePath:
    @pytest.mark.parametrize("path", ["models/a.sql", "tests/selfheal_guard_x.sql", "dbt_project.yml"])
    def test_plain_paths_pass_unchanged(self, path: str) -> None:
        assert check_relative_path(path) == path

    @pytest.mark.parametrize(
        ("path", "fragment"),
        [
            pytest.param("", "non-empty", id="empty"),
            pytest.param("/etc/passwd", "absolute", id="absolute"),
            pytest.param("C:/x.sql", "absolute", id="drive"),
            pytest.param("models/../../x.sql", "'..'", id="dotdot"),
            pytest.param("models/./x.sql", "'..'", id="dot"),
            pytest.param("models//x.sql", "'..'", id="empty-part"),
            pytest.param("models\\x.sql", "backslash", id="backslash"),
            pytest.param("models/x\x00.sql", "NUL", id="nul"),
        ],
    )
    def test_anything_else_is_refused_naming_the_path(self, path: str, fragment: str) -> None:
        with pytest.raises(UnsafePathError, match=fragment):
            check_relative_path(path)


class TestReadOnlyGuard:
    @pytest.mark.parametrize(
        ("sql", "fragment"),
        [
            pytest.param("insert into t values (1)", "INSERT statement", id="insert"),
            pytest.param("delete from t where 1 = 1", "DELETE statement", id="delete"),
            pytest.param("update t set a = 1", "UPDATE statement", id="update"),
            pytest.param(
                "merge into t using s on t.id = s.id when matched then delete", "MERGE statement", id="merge"
            ),
            pytest.param("create table t2 as select * from t", "CREATE statement", id="create"),
            pytest.param('drop database "DEMO"', "DROP statement", id="drop"),
            pytest.param("alter table t rename column a to b", "ALTER statement", id="alter"),
            pytest.param("truncate table t", "TRUNCATETABLE statement", id="truncate"),
            pytest.param("grant select on t to role r", "statement", id="grant"),
            pytest.param("call cleanup()", "COMMAND statement", id="call"),
            pytest.param("use database PROD", "USE statement", id="use"),
            pytest.param("select 1; drop table t", "2 statements", id="select-then-drop"),
            pytest.param("select 1; select 2", "2 statements", id="two-selects"),
            pytest.param("select * into t2 from t", "contains INTO", id="select-into"),
            pytest.param("select system$cancel_all_queries(1)", "SYSTEM\\$", id="system-function"),
            pytest.param("select from where", "does not parse", id="garbage"),
            pytest.param("", "0 statements", id="empty"),
            pytest.param('show columns in schema "DB"."RAW"', "SHOW statement", id="show"),
            pytest.param('describe table "DB"."RAW"."ORDERS"', "DESCRIBE statement", id="describe"),
        ],
    )
    def test_refuses_anything_but_one_read(self, sql: str, fragment: str) -> None:
        with pytest.raises(ReadOnlyViolation, match=fragment):
            read_only_sql(sql, database="DB")

    @pytest.mark.parametrize(
        "sql",
        [
            pytest.param('select count(*) from "DB"."RAW"."ORDERS" limit 1', id="select"),
            pytest.param("with x as (select 1 as a) select a from x limit 5", id="cte"),
            pytest.param("select 1 union all select 2", id="union"),
        ],
    )
    def test_allows_reads(self, sql: str) -> None:
        assert " LIMIT " in read_only_sql(sql, database="DB")
