"""The ``column_rename`` rule on the demo project: rewrites, singular tests, and the cases it escalates."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_selfheal.core.rules import RulesConfig
from tests.support.fixes import (
    ORDERS_GUARD,
    PROJECT,
    RENAME,
    SOURCES_YML,
    STG_ORDERS,
    assert_sql_intact,
    demo_files,
    escalation_of,
    manifest_slice,
    plan_of,
    propose,
    unique_id,
    with_files,
)
from tests.unit.core.fixes.hostile import hostile_name

RENAMED_STG_ORDERS = """\
select
    order_id,
    customer_id,
    order_date,
    lower(status) as status,
    contact_email as customer_email,
    _loaded_at as loaded_at
from {{ source('raw', 'orders') }}
"""

RENAME_GUARD = """\
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. raw.orders.CUSTOMER_EMAIL was renamed
-- upstream to CONTACT_EMAIL. This test reads the columns of raw.orders that the models use and returns no
-- rows, so `dbt build` fails here, naming the source, if one of them is renamed or dropped again.
select
    ORDER_ID,
    CUSTOMER_ID,
    ORDER_DATE,
    STATUS,
    CONTACT_EMAIL,
    _LOADED_AT
from {{ source('raw', 'orders') }}
where false
"""

TRICKY_MODEL = """\
{{ config(materialized='view') }}
-- customer_email: the checkout contact, kept as it is upstream
with source as (
    select * from {{ source('raw', 'orders') }}
),

customers as (
    select customer_id, customer_email from {{ ref('stg_customers') }}
),

joined as (
    select
        o.order_id,
        lower(o.customer_email) as email_lower,
        o.customer_email,
        c.customer_email as account_email,
        max(o.customer_email) over (partition by o.customer_email order by o.order_date) as latest_email
    from source as o
    left join customers as c
        on o.customer_email = c.customer_email
    where o.customer_email is not null
        and o.order_id in (select order_id from {{ ref('stg_payments') }} where customer_email = 'x')
        and exists (select 1 from {{ ref('stg_customers') }} as s where s.email = o.customer_email)
)

select * from joined
"""

TRICKY_MODEL_RENAMED = """\
{{ config(materialized='view') }}
-- customer_email: the checkout contact, kept as it is upstream
with source as (
    select * from {{ source('raw', 'orders') }}
),

customers as (
    select customer_id, customer_email from {{ ref('stg_customers') }}
),

joined as (
    select
        o.order_id,
        lower(o.contact_email) as email_lower,
        o.contact_email as customer_email,
        c.customer_email as account_email,
        max(o.contact_email) over (partition by o.contact_email order by o.order_date) as latest_email
    from source as o
    left join customers as c
        on o.contact_email = c.customer_email
    where o.contact_email is not null
        and o.order_id in (select order_id from {{ ref('stg_payments') }} where customer_email = 'x')
        and exists (select 1 from {{ ref('stg_customers') }} as s where s.email = o.contact_email)
)

select * from joined
"""


class TestColumnRename:
    def test_demo_staging_model(self) -> None:
        plan = plan_of(propose(RENAME))
        files = demo_files()
        assert (plan.fix_type, plan.tier, plan.priority) == ("column_rename", "auto", 1)
        assert set(plan.changes) == {STG_ORDERS, SOURCES_YML, ORDERS_GUARD}
        assert plan.changes[STG_ORDERS] == RENAMED_STG_ORDERS
        assert plan.changes[SOURCES_YML] == files[SOURCES_YML].replace(
            "          - name: CUSTOMER_EMAIL\n", "          - name: CONTACT_EMAIL\n"
        )
        assert plan.guard_tests == {ORDERS_GUARD: RENAME_GUARD}
        assert plan.changes[ORDERS_GUARD] == RENAME_GUARD
        assert_sql_intact(files[STG_ORDERS], plan.changes[STG_ORDERS])
        assert "raw.orders.CUSTOMER_EMAIL was renamed to CONTACT_EMAIL (confidence 0.90" in plan.rationale
        assert "`contact_email as customer_email`" in plan.rationale
        assert ORDERS_GUARD in plan.rationale

    def test_tricky_sql_changes_only_references_to_the_source(self) -> None:
        plan = plan_of(propose(RENAME, files=with_files({STG_ORDERS: TRICKY_MODEL})))
        assert plan.changes[STG_ORDERS] == TRICKY_MODEL_RENAMED
        assert_sql_intact(TRICKY_MODEL, plan.changes[STG_ORDERS])
        # The guard lists only columns that certainly come from the source.
        assert plan.changes[ORDERS_GUARD].endswith(
            "select\n    ORDER_ID,\n    CONTACT_EMAIL,\n    ORDER_DATE\nfrom {{ source('raw', 'orders') }}\n"
            "where false\n"
        )

    @pytest.mark.parametrize(
        ("model", "expected"),
        [
            pytest.param(
                "select CUSTOMER_EMAIL, count(*) as n from {{ source('raw', 'orders') }}\n"
                "group by CUSTOMER_EMAIL having max(CUSTOMER_EMAIL) is not null order by CUSTOMER_EMAIL\n",
                "select CONTACT_EMAIL as CUSTOMER_EMAIL, count(*) as n from {{ source('raw', 'orders') }}\n"
                "group by CONTACT_EMAIL having max(CONTACT_EMAIL) is not null order by CONTACT_EMAIL\n",
                id="upper-case-group-having-order",
            ),
            pytest.param(
                "select \"CUSTOMER_EMAIL\", \"customer_email\" from {{ source('raw', 'orders') }}\n",
                'select "CONTACT_EMAIL" as "CUSTOMER_EMAIL", "customer_email" from {{ source(\'raw\', \'orders\') }}\n',
                id="quoted-names-keep-their-case-rules",
            ),
            pytest.param(
                "select order_id, coalesce(customer_email, 'none') as email\n"
                "from {{ source('raw', 'orders') }}\n"
                "qualify row_number() over (partition by customer_email order by order_id) = 1\n",
                "select order_id, coalesce(contact_email, 'none') as email\n"
                "from {{ source('raw', 'orders') }}\n"
                "qualify row_number() over (partition by contact_email order by order_id) = 1\n",
                id="function-and-qualify",
            ),
            pytest.param(
                "select order_id, customer_email from {{ source('raw', 'orders') }}\n"
                "{% if is_incremental() %}\n"
                "where _loaded_at > (select max(loaded_at) from {{ this }}) and customer_email is not null\n"
                "{% endif %}\n",
                "select order_id, contact_email as customer_email from {{ source('raw', 'orders') }}\n"
                "{% if is_incremental() %}\n"
                "where _loaded_at > (select max(loaded_at) from {{ this }}) and contact_email is not null\n"
                "{% endif %}\n",
                id="incremental-jinja",
            ),
            pytest.param(
                "select order_id, customer_email from {{ source('raw', 'orders') }}\n"
                "union all\n"
                "select order_id, customer_email from {{ source('raw', 'payments') }}\n",
                "select order_id, contact_email as customer_email from {{ source('raw', 'orders') }}\n"
                "union all\n"
                "select order_id, customer_email from {{ source('raw', 'payments') }}\n",
                id="union-other-source-untouched",
            ),
        ],
    )
    def test_rewrites(self, model: str, expected: str) -> None:
        plan = plan_of(propose(RENAME, files=with_files({STG_ORDERS: model})))
        assert plan.changes[STG_ORDERS] == expected
        assert_sql_intact(model, plan.changes[STG_ORDERS])

    def test_singular_test_reading_the_source_is_rewritten(self) -> None:
        manifest = manifest_slice()
        test = "tests/orders_have_contact.sql"
        node_id = f"test.{PROJECT}.orders_have_contact.1"
        manifest["nodes"][node_id] = {
            "unique_id": node_id,
            "resource_type": "test",
            "name": "orders_have_contact",
            "original_file_path": test,
            "test_metadata": None,
            "depends_on": {"nodes": [unique_id("source.raw.orders")]},
        }
        manifest["child_map"][unique_id("source.raw.orders")].append(node_id)
        files = demo_files()
        files[test] = "select order_id from {{ source('raw', 'orders') }} where customer_email is null\n"
        plan = plan_of(
            propose(RENAME, files=files, manifest=manifest, rules=RulesConfig(allowed_paths=("**",)))
        )
        assert plan.changes[test] == (
            "select order_id from {{ source('raw', 'orders') }} where contact_email is null\n"
        )

    @pytest.mark.parametrize(
        ("model", "reason"),
        [
            pytest.param(
                "select order_id, customer_email\n"
                "from {{ source('raw', 'orders') }} as o join {{ ref('stg_customers') }} as c\n"
                "    on o.customer_id = c.customer_id\n",
                "reads customer_email unqualified in a join with raw.orders",
                id="unqualified-in-join",
            ),
            pytest.param(
                "select * from {{ source('raw', 'orders') }}\n",
                "selects * from raw.orders, so its output would change from CUSTOMER_EMAIL to CONTACT_EMAIL",
                id="star-passes-new-name-downstream",
            ),
            pytest.param(
                "select\n    {% for c in ['order_id'] %}{{ c }},{% endfor %}\n    customer_email\n"
                "from {{ source('raw', 'orders') }}\n",
                "uses the Jinja block {% for %}",
                id="jinja-loop",
            ),
            pytest.param(
                "select {{ dbt_utils.star(source('raw', 'orders'), except=['CUSTOMER_EMAIL']) }}\n"
                "from {{ source('raw', 'orders') }}\n",
                "names CUSTOMER_EMAIL inside Jinja",
                id="name-inside-jinja",
            ),
            pytest.param(
                "select order_id, {{ dbt_utils.star(ref('x')) }} from {{ source('raw', 'orders') }}\n"
                "where customer_email is not null\n",
                "may expand to the source's columns",
                id="expanding-macro",
            ),
            pytest.param(
                "select order_id, customer_email from {{ source('raw', 'orders') }} where\n",
                "does not parse as Snowflake SQL once its Jinja is masked",
                id="unparseable",
            ),
            pytest.param(
                "select lower(customer_email) as customer_email from {{ source('raw', 'orders') }}\n"
                "order by customer_email\n",
                "names CUSTOMER_EMAIL both as a column of raw.orders and as an output alias",
                id="alias-shadows-column",
            ),
            pytest.param(
                "select order_id from {{ source('raw', 'orders') }} as o\n"
                "join {{ ref('stg_customers') }} as c using (customer_email)\n",
                "uses CUSTOMER_EMAIL in a position the rewriter does not handle",
                id="join-using",
            ),
            pytest.param(
                "select order_id from {{ source('raw', 'orders') }}\n",
                "no model reading raw.orders directly references CUSTOMER_EMAIL",
                id="not-referenced",
            ),
        ],
    )
    def test_escalates_when_not_certain(self, model: str, reason: str) -> None:
        escalation = escalation_of(propose(RENAME, files=with_files({STG_ORDERS: model})))
        assert reason in escalation.reason
        assert escalation.fix_type == "column_rename"


class TestTextFromOutside:
    @settings(max_examples=40)
    @given(hostile_name, st.sampled_from([("column", "old"), ("new_column", "new")]))
    def test_a_hostile_column_name_escalates_with_the_reason(self, name: str, field: tuple[str, str]) -> None:
        triage = copy.deepcopy(RENAME)
        triage["root_cause"]["evidence"][field[0]] = name
        escalation = escalation_of(propose(triage))
        assert escalation.fix_type == "column_rename"
        assert escalation.reason.startswith(
            f"refusing the {field[1]} column name of the rename {name[:77]!r}"[:60]
        )
        assert "it holds the Jinja delimiter" in escalation.reason
        assert escalation.reason.endswith("a person must check where this text came from")
