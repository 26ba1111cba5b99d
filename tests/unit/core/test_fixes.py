from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from airflow_selfheal.core.fixes import Escalation, FixPlan, propose_fix
from airflow_selfheal.core.rules import RulesConfig, load_rules

DEMO = Path(__file__).resolve().parents[3] / "dev" / "demo_project"
PROJECT = "selfheal_demo"
INCIDENT_ID = "inc-0123456789abcdef"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


def demo_files() -> dict[str, str]:
    """The demo dbt project's SQL and YAML, as the sandbox copy would hold them."""
    return {
        path.relative_to(DEMO).as_posix(): path.read_text()
        for path in sorted(DEMO.rglob("*"))
        if path.is_file()
        and path.suffix in {".sql", ".yml"}
        and not {"target", "logs", "dbt_packages"} & set(path.relative_to(DEMO).parts)
    }


SOURCES = {
    "orders": {"loaded_at_field": "_LOADED_AT"},
    "customers": {},
    "payments": {},
    "products": {},
    "order_items": {},
}
MODELS: dict[str, tuple[str, list[str], str]] = {
    "stg_orders": ("staging", ["source.raw.orders"], "_staging.yml"),
    "stg_customers": ("staging", ["source.raw.customers"], "_staging.yml"),
    "stg_payments": ("staging", ["source.raw.payments"], "_staging.yml"),
    "stg_products": ("staging", ["source.raw.products"], "_staging.yml"),
    "stg_order_items": ("staging", ["source.raw.order_items"], "_staging.yml"),
    "int_order_payments": ("intermediate", ["stg_payments"], "_intermediate.yml"),
    "int_order_items": ("intermediate", ["stg_order_items", "stg_products"], "_intermediate.yml"),
    "int_customer_orders": ("intermediate", ["stg_orders", "int_order_payments"], "_intermediate.yml"),
    "fct_orders": ("marts", ["stg_orders", "int_order_items", "int_order_payments"], "_marts.yml"),
    "dim_customers": ("marts", ["stg_orders", "stg_customers", "int_customer_orders"], "_marts.yml"),
    "fct_daily_revenue": ("marts", ["fct_orders"], "_marts.yml"),
}
STATUS_VALUES = ["placed", "shipped", "completed", "returned", "return_pending"]
# name -> (generic test or None for singular, attached node, column, kwargs, file)
TESTS: dict[str, tuple[str | None, str, str | None, dict[str, Any], str]] = {
    "unique_stg_orders_order_id": ("unique", "stg_orders", "order_id", {}, "models/staging/_staging.yml"),
    "not_null_stg_orders_customer_email": (
        "not_null",
        "stg_orders",
        "customer_email",
        {},
        "models/staging/_staging.yml",
    ),
    "accepted_values_stg_orders_status__placed__shipped__completed__returned__return_pending": (
        "accepted_values",
        "stg_orders",
        "status",
        {"values": STATUS_VALUES},
        "models/staging/_staging.yml",
    ),
    "relationships_stg_payments_order_id__order_id__ref_stg_orders_": (
        "relationships",
        "stg_orders",
        "order_id",
        {"to": "ref('stg_orders')", "field": "order_id"},
        "models/staging/_staging.yml",
    ),
    "source_unique_raw_orders_ORDER_ID": (
        "unique",
        "source.raw.orders",
        "ORDER_ID",
        {},
        "models/staging/_sources.yml",
    ),
    "not_null_stg_customers_email": ("not_null", "stg_customers", "email", {}, "models/staging/_staging.yml"),
    "assert_order_payments_reconcile": (
        None,
        "fct_orders",
        None,
        {},
        "tests/assert_order_payments_reconcile.sql",
    ),
}


def unique_id(name: str) -> str:
    if name.startswith("source."):
        return f"source.{PROJECT}.{name.removeprefix('source.')}"
    return f"model.{PROJECT}.{name}"


def manifest_slice() -> dict[str, Any]:
    """The slice of the demo project's ``manifest.json`` the rules read, as ``dbt parse`` writes it."""
    sources = {
        f"source.{PROJECT}.raw.{name}": {
            "unique_id": f"source.{PROJECT}.raw.{name}",
            "resource_type": "source",
            "source_name": "raw",
            "name": name,
            "identifier": name,
            "database": "DEMO",
            "schema": "RAW",
            "original_file_path": "models/staging/_sources.yml",
            "loaded_at_field": extra.get("loaded_at_field"),
        }
        for name, extra in SOURCES.items()
    }
    nodes: dict[str, Any] = {}
    for name, (folder, parents, properties) in MODELS.items():
        nodes[unique_id(name)] = {
            "unique_id": unique_id(name),
            "resource_type": "model",
            "name": name,
            "language": "sql",
            "original_file_path": f"models/{folder}/{name}.sql",
            "patch_path": f"{PROJECT}://models/{folder}/{properties}",
            "depends_on": {"nodes": [unique_id(parent) for parent in parents]},
            "config": {"contract": {"enforced": False}},
        }
    for name, (generic, attached, column, kwargs, path) in TESTS.items():
        test_id = f"test.{PROJECT}.{name}.0123456789"
        nodes[test_id] = {
            "unique_id": test_id,
            "resource_type": "test",
            "name": name,
            "language": "sql",
            "original_file_path": path,
            "attached_node": unique_id(attached) if generic else None,
            "column_name": column,
            "test_metadata": None
            if generic is None
            else {"name": generic, "namespace": None, "kwargs": {"column_name": column, **kwargs}},
            "depends_on": {"nodes": [unique_id(attached)]},
        }
    child_map: dict[str, list[str]] = {key: [] for key in [*sources, *nodes]}
    for child_id, child in nodes.items():
        for parent in child["depends_on"]["nodes"]:
            child_map[parent].append(child_id)
    return {"nodes": nodes, "sources": sources, "child_map": child_map}


def node_id_of_test(name: str) -> str:
    return f"test.{PROJECT}.{name}.0123456789"


def incident(*nodes: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "incident_id": INCIDENT_ID,
        "nodes": [
            {"unique_id": node_id, "resource_type": resource_type, "name": name}
            for node_id, resource_type, name in nodes
        ],
    }


STG_ORDERS_INCIDENT = incident((unique_id("stg_orders"), "model", "stg_orders"))


def drift_triage(root_cause: str, failure_class: str, **event: Any) -> dict[str, Any]:
    return {
        "failure_class": failure_class,
        "action": "repair",
        "summary": "a summary",
        "identifiers": [],
        "root_cause": {"kind": root_cause, "message": "an upstream change", "evidence": event},
    }


RENAME = drift_triage(
    "upstream_rename",
    "missing_column",
    kind="column_renamed",
    table="RAW.ORDERS",
    column="CUSTOMER_EMAIL",
    new_column="CONTACT_EMAIL",
    old_type="VARCHAR",
    new_type="VARCHAR",
    confidence=0.9,
    reason="same type VARCHAR; same position 5",
)


def propose(
    triage: dict[str, Any],
    *,
    files: dict[str, str] | None = None,
    rules: RulesConfig | None = None,
    manifest: dict[str, Any] | None = None,
    the_incident: dict[str, Any] | None = None,
    failing_rows: list[dict[str, Any]] | None = None,
) -> FixPlan | Escalation:
    return propose_fix(
        triage=triage,
        incident=the_incident or STG_ORDERS_INCIDENT,
        project_files=demo_files() if files is None else files,
        manifest=manifest_slice() if manifest is None else manifest,
        rules=rules or RulesConfig(),
        failing_rows=failing_rows or [],
    )


def mask(sql: str) -> str:
    """Jinja expressions become an identifier, config() and statements disappear: enough for sqlglot."""

    def replace(match: re.Match[str]) -> str:
        jinja = match.group(0)
        return "__jinja__" if jinja.startswith("{{") and "config(" not in jinja else ""

    return JINJA.sub(replace, sql)


def assert_sql_intact(original: str, rewritten: str) -> None:
    """The rewrite still parses as Snowflake SQL and holds exactly the original's Jinja, in order."""
    assert JINJA.findall(rewritten) == JINJA.findall(original)
    assert isinstance(sqlglot.parse_one(mask(rewritten), read="snowflake"), sqlglot.exp.Query)


def plan_of(outcome: FixPlan | Escalation) -> FixPlan:
    assert isinstance(outcome, FixPlan), outcome
    return outcome


def escalation_of(outcome: FixPlan | Escalation) -> Escalation:
    assert isinstance(outcome, Escalation), outcome
    return outcome


def with_files(replacements: dict[str, str]) -> dict[str, str]:
    return {**demo_files(), **replacements}


def add_model(manifest: dict[str, Any], name: str, path: str, parents: list[str]) -> None:
    node_id = unique_id(name)
    manifest["nodes"][node_id] = {
        "unique_id": node_id,
        "resource_type": "model",
        "name": name,
        "language": "sql",
        "original_file_path": path,
        "depends_on": {"nodes": [unique_id(parent) for parent in parents]},
    }
    manifest["child_map"][node_id] = []
    for parent in parents:
        manifest["child_map"][unique_id(parent)].append(node_id)


SOURCES_YML = "models/staging/_sources.yml"
STAGING_YML = "models/staging/_staging.yml"
STG_ORDERS = "models/staging/stg_orders.sql"
STG_CUSTOMERS = "models/staging/stg_customers.sql"
STG_PAYMENTS = "models/staging/stg_payments.sql"
ORDERS_GUARD = "tests/selfheal_guard_raw_orders_columns.sql"


# ---------------------------------------------------------------------------------------------------------------
# column_rename
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# type_cast
# ---------------------------------------------------------------------------------------------------------------

TYPE_CHANGE = drift_triage(
    "upstream_type_change",
    "type_mismatch",
    kind="column_type_changed",
    table="RAW.PAYMENTS",
    column="AMOUNT",
    old_type="NUMBER(10,2)",
    new_type="VARCHAR(16777216)",
)

CAST_STG_PAYMENTS = """\
select
    payment_id,
    order_id,
    payment_method,
    try_cast(amount as number(10, 2)) as amount,
    created_at as paid_at
from {{ source('raw', 'payments') }}
"""

CAST_GUARD = """\
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. raw.payments.AMOUNT changed type from
-- NUMBER(10,2) to VARCHAR(16777216), and the models cast it back with try_cast. This test returns the
-- values that do not convert to number(10, 2), which try_cast would otherwise turn into silent nulls.
select AMOUNT
from {{ source('raw', 'payments') }}
where AMOUNT is not null
    and try_cast(AMOUNT as number(10, 2)) is null
"""


class TestTypeCast:
    def test_demo_staging_model(self) -> None:
        plan = plan_of(propose(TYPE_CHANGE))
        guard = "tests/selfheal_guard_raw_payments_amount_castable.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("type_cast", "auto", 2)
        assert plan.changes == {STG_PAYMENTS: CAST_STG_PAYMENTS, guard: CAST_GUARD}
        assert plan.guard_tests == {guard: CAST_GUARD}
        assert_sql_intact(demo_files()[STG_PAYMENTS], plan.changes[STG_PAYMENTS])
        assert "raw.payments.AMOUNT changed type from NUMBER(10,2) to VARCHAR(16777216)" in plan.rationale

    def test_every_reference_is_cast(self) -> None:
        model = (
            "with source as (select * from {{ source('raw', 'payments') }})\n"
            "select payment_id, amount * 100 as cents, amount from source where amount > 0\n"
        )
        plan = plan_of(propose(TYPE_CHANGE, files=with_files({STG_PAYMENTS: model})))
        assert plan.changes[STG_PAYMENTS] == (
            "with source as (select * from {{ source('raw', 'payments') }})\n"
            "select payment_id, try_cast(amount as number(10, 2)) * 100 as cents, "
            "try_cast(amount as number(10, 2)) as amount from source where try_cast(amount as number(10, 2)) > 0\n"
        )

    def test_non_string_input_uses_cast_and_a_presence_guard(self) -> None:
        triage = drift_triage(
            "upstream_type_change",
            "type_mismatch",
            kind="column_type_changed",
            table="RAW.PAYMENTS",
            column="AMOUNT",
            old_type="NUMBER(10,2)",
            new_type="FLOAT",
        )
        plan = plan_of(propose(triage))
        assert "    cast(amount as number(10, 2)) as amount,\n" in plan.changes[STG_PAYMENTS]
        guard = plan.changes["tests/selfheal_guard_raw_payments_columns.sql"]
        assert guard.endswith(
            "select\n    PAYMENT_ID,\n    ORDER_ID,\n    PAYMENT_METHOD,\n    AMOUNT,\n    CREATED_AT\n"
            "from {{ source('raw', 'payments') }}\nwhere false\n"
        )
        assert "try_cast accepts only string input" in plan.rationale

    def test_star_escalates(self) -> None:
        escalation = escalation_of(
            propose(
                TYPE_CHANGE,
                files=with_files({STG_PAYMENTS: "select * from {{ source('raw', 'payments') }}"}),
            )
        )
        assert escalation.reason.startswith(f"{STG_PAYMENTS} selects * from raw.payments")


# ---------------------------------------------------------------------------------------------------------------
# drop_unused_column
# ---------------------------------------------------------------------------------------------------------------

LEGACY_REMOVED = drift_triage(
    "upstream_column_removed",
    "missing_column",
    kind="column_removed",
    table="RAW.CUSTOMERS",
    column="LEGACY_SEGMENT",
)
EMAIL_REMOVED = drift_triage(
    "upstream_column_removed",
    "missing_column",
    kind="column_removed",
    table="RAW.ORDERS",
    column="CUSTOMER_EMAIL",
)

DROP_GUARD = """\
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. raw.customers.LEGACY_SEGMENT was
-- removed upstream. This test reads the columns of raw.customers that the models use and returns no rows,
-- so `dbt build` fails here, naming the source, if one of them is renamed or dropped again.
select
    CUSTOMER_ID,
    FIRST_NAME,
    LAST_NAME,
    EMAIL,
    CREATED_AT
from {{ source('raw', 'customers') }}
where false
"""


def stg_customers_with_legacy() -> str:
    original = demo_files()[STG_CUSTOMERS]
    return original.replace("    created_at\n", "    legacy_segment,\n    created_at\n")


class TestDropUnusedColumn:
    def test_unused_column_is_removed(self) -> None:
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy()})
        plan = plan_of(propose(LEGACY_REMOVED, files=files))
        demo = demo_files()
        guard = "tests/selfheal_guard_raw_customers_columns.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("drop_unused_column", "auto", 3)
        assert set(plan.changes) == {STG_CUSTOMERS, SOURCES_YML, guard}
        assert plan.changes[STG_CUSTOMERS] == demo[STG_CUSTOMERS]  # exactly the demo model without the line
        assert plan.changes[SOURCES_YML] == demo[SOURCES_YML].replace(
            "          - name: LEGACY_SEGMENT\n"
            "            description: Segment from the retired CRM; kept by the upstream, read by no model.\n",
            "",
        )
        assert plan.guard_tests == {guard: DROP_GUARD}
        assert "raw.customers lost column LEGACY_SEGMENT." in plan.rationale

    def test_model_properties_entry_is_removed_too(self) -> None:
        staging = demo_files()[STAGING_YML]
        entry = "      - name: legacy_segment\n        description: Segment from the retired CRM.\n"
        with_entry = staging.replace("      - name: full_name\n", entry + "      - name: full_name\n")
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy(), STAGING_YML: with_entry})
        plan = plan_of(propose(LEGACY_REMOVED, files=files))
        assert plan.changes[STAGING_YML] == staging

    def test_used_column_escalates_naming_the_users(self) -> None:
        escalation = escalation_of(propose(EMAIL_REMOVED))
        assert escalation.reason == (
            "raw.orders.CUSTOMER_EMAIL was removed upstream, but it is still used by model dim_customers, "
            "model fct_orders, test not_null_stg_orders_customer_email; a person must decide what replaces it"
        )

    def test_use_behind_a_select_star_is_found(self) -> None:
        manifest = manifest_slice()
        add_model(manifest, "customers_wide", "models/marts/customers_wide.sql", ["stg_customers"])
        add_model(manifest, "segments", "models/marts/segments.sql", ["customers_wide"])
        files = with_files({STG_CUSTOMERS: stg_customers_with_legacy()})
        files["models/marts/customers_wide.sql"] = "select w.* from {{ ref('stg_customers') }} as w\n"
        files["models/marts/segments.sql"] = (
            "select legacy_segment, count(*) as n from {{ ref('customers_wide') }} group by 1\n"
        )
        escalation = escalation_of(propose(LEGACY_REMOVED, files=files, manifest=manifest))
        assert "still used by model segments;" in escalation.reason
        assert "customers_wide" not in escalation.reason

    @pytest.mark.parametrize(
        ("select_list", "expected"),
        [
            pytest.param(
                "    customer_id,\n    legacy_segment,  -- from the old CRM\n    email\n",
                "    customer_id,\n    email\n",
                id="own-line-with-comment",
            ),
            pytest.param(
                "    customer_id,\n    email, -- account email\n    legacy_segment as segment\n",
                "    customer_id,\n    email -- account email\n",
                id="last-item-keeps-previous-comment",
            ),
            pytest.param(
                "    legacy_segment\n  , customer_id\n  , email\n",
                "   customer_id\n  , email\n",
                id="leading-commas",
            ),
            pytest.param(
                "    customer_id, legacy_segment, email\n", "    customer_id, email\n", id="inline-middle"
            ),
            pytest.param(
                "    customer_id, email, legacy_segment\n", "    customer_id, email\n", id="inline-last"
            ),
        ],
    )
    def test_removal_layouts(self, select_list: str, expected: str) -> None:
        source = "from {{ source('raw', 'customers') }}\n"
        model = f"select\n{select_list}{source}"
        plan = plan_of(propose(LEGACY_REMOVED, files=with_files({STG_CUSTOMERS: model})))
        assert plan.changes[STG_CUSTOMERS] == f"select\n{expected}{source}"
        assert_sql_intact(model, plan.changes[STG_CUSTOMERS])

    @pytest.mark.parametrize(
        ("model", "reason"),
        [
            pytest.param(
                "select customer_id, legacy_segment from {{ source('raw', 'customers') }} where legacy_segment <> 'x'",
                "stg_customers uses LEGACY_SEGMENT in its logic (legacy_segment <> 'x')",
                id="used-in-where",
            ),
            pytest.param(
                "select customer_id, upper(legacy_segment) as segment from {{ source('raw', 'customers') }}",
                "stg_customers uses LEGACY_SEGMENT in its logic (UPPER(legacy_segment))",
                id="used-in-expression",
            ),
            pytest.param(
                "select legacy_segment from {{ source('raw', 'customers') }}",
                "legacy_segment is the only select item",
                id="only-item",
            ),
        ],
    )
    def test_escalates(self, model: str, reason: str) -> None:
        escalation = escalation_of(propose(LEGACY_REMOVED, files=with_files({STG_CUSTOMERS: model})))
        assert reason in escalation.reason


# ---------------------------------------------------------------------------------------------------------------
# source_table_rename
# ---------------------------------------------------------------------------------------------------------------

TABLE_RENAMED = drift_triage(
    "upstream_table_removed",
    "missing_relation",
    kind="table_renamed",
    table="RAW.ORDERS",
    new_table="RAW.ORDERS_V2",
    confidence=1.0,
    reason="same columns 6/6 by name and type; name similarity 0.80",
)


class TestSourceTableRename:
    def test_identifier_is_added(self) -> None:
        plan = plan_of(propose(TABLE_RENAMED))
        demo = demo_files()
        assert (plan.fix_type, plan.tier, plan.priority) == ("source_table_rename", "auto", 4)
        assert set(plan.changes) == {SOURCES_YML, ORDERS_GUARD}
        assert plan.changes[SOURCES_YML] == demo[SOURCES_YML].replace(
            "      - name: orders\n", "      - name: orders\n        identifier: orders_v2\n"
        )
        assert plan.guard_tests[ORDERS_GUARD].endswith(
            "select\n    ORDER_ID,\n    CUSTOMER_ID,\n    ORDER_DATE,\n    STATUS,\n    CUSTOMER_EMAIL,\n"
            "    _LOADED_AT\nfrom {{ source('raw', 'orders') }}\nwhere false\n"
        )
        assert "raw.orders was renamed to raw.orders_v2" in plan.rationale

    def test_existing_identifier_is_replaced_in_its_style(self) -> None:
        demo = demo_files()[SOURCES_YML]
        before = demo.replace(
            "      - name: orders\n", "      - name: orders\n        identifier: 'orders_2024'  # moved\n"
        )
        plan = plan_of(propose(TABLE_RENAMED, files=with_files({SOURCES_YML: before})))
        assert plan.changes[SOURCES_YML] == before.replace("'orders_2024'", "'orders_v2'")

    def test_schema_move_escalates(self) -> None:
        triage = drift_triage(
            "upstream_table_removed",
            "missing_relation",
            kind="table_renamed",
            table="RAW.ORDERS",
            new_table="RAW2.ORDERS",
        )
        assert "moved from schema RAW to RAW2" in escalation_of(propose(triage)).reason

    def test_removed_table_has_no_rule(self) -> None:
        triage = drift_triage(
            "upstream_table_removed", "missing_relation", kind="table_removed", table="RAW.ORDERS"
        )
        escalation = escalation_of(propose(triage))
        assert escalation.reason.startswith("no deterministic rule for upstream_table_removed")
        assert escalation.fix_type is None


# ---------------------------------------------------------------------------------------------------------------
# dedup
# ---------------------------------------------------------------------------------------------------------------

UNIQUE_TEST = "unique_stg_orders_order_id"
UNIQUE_FAILED = {
    "failure_class": "test_unique",
    "action": "repair",
    "summary": "Data test unique_stg_orders_order_id failed: Got 2 results, configured to fail if != 0",
    "identifiers": [UNIQUE_TEST],
    "root_cause": None,
}
UNIQUE_INCIDENT = incident((node_id_of_test(UNIQUE_TEST), "test", UNIQUE_TEST))

DEDUP_STG_ORDERS = """\
select
    order_id,
    customer_id,
    order_date,
    lower(status) as status,
    customer_email,
    _loaded_at as loaded_at
from {{ source('raw', 'orders') }}
qualify row_number() over (partition by order_id order by _loaded_at desc) = 1
"""

DEDUP_GUARD = """\
{{ config(severity='warn') }}
-- Guard test written by airflow-selfheal for inc-0123456789abcdef. unique_stg_orders_order_id found
-- duplicate order_id values in stg_orders, which now keeps one row per key. This warn-level test reports
-- the duplicate ORDER_ID values arriving in raw.orders, so they stay visible at the source instead of
-- being silently dropped.
select ORDER_ID, count(*) as copies
from {{ source('raw', 'orders') }}
group by ORDER_ID
having count(*) > 1
"""

CTE_STAGING = """\
with source as (
    select * from {{ source('raw', 'orders') }}
),

renamed as (
    select
        order_id,
        customer_id,
        _loaded_at as loaded_at
    from source
)

select * from renamed
"""


class TestDedup:
    def test_demo_staging_model(self) -> None:
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT))
        guard = "tests/selfheal_guard_raw_orders_order_id_duplicates.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("dedup", "review", 5)
        assert plan.changes == {STG_ORDERS: DEDUP_STG_ORDERS, guard: DEDUP_GUARD}
        assert plan.guard_tests == {guard: DEDUP_GUARD}
        assert_sql_intact(demo_files()[STG_ORDERS], DEDUP_STG_ORDERS)
        assert "unique test unique_stg_orders_order_id failed on stg_orders.order_id" in plan.rationale
        assert "loaded-at column _LOADED_AT, newest first" in plan.rationale

    def test_found_from_the_triage_identifiers_alone(self) -> None:
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=incident()))
        assert plan.changes[STG_ORDERS] == DEDUP_STG_ORDERS

    def test_cte_style_model_orders_by_the_carried_loaded_at(self) -> None:
        plan = plan_of(
            propose(
                UNIQUE_FAILED,
                the_incident=UNIQUE_INCIDENT,
                files=with_files({STG_ORDERS: CTE_STAGING}),
            )
        )
        assert plan.changes[STG_ORDERS] == CTE_STAGING + (
            "qualify row_number() over (partition by order_id order by loaded_at desc) = 1\n"
        )
        assert "group by ORDER_ID" in plan.changes["tests/selfheal_guard_raw_orders_order_id_duplicates.sql"]

    def test_without_loaded_at_orders_by_the_key(self) -> None:
        manifest = manifest_slice()
        manifest["sources"][unique_id("source.raw.orders")]["loaded_at_field"] = None
        plan = plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT, manifest=manifest))
        assert plan.changes[STG_ORDERS].endswith(
            "qualify row_number() over (partition by order_id order by order_id) = 1\n"
        )
        assert "which duplicate survives is arbitrary" in plan.rationale

    def test_qualify_goes_after_trailing_jinja(self) -> None:
        model = (
            "{{ config(materialized='incremental') }}\n"
            "select order_id, _loaded_at from {{ source('raw', 'orders') }}\n"
            "{% if is_incremental() %}\nwhere _loaded_at > (select max(_loaded_at) from {{ this }})\n{% endif %}\n"
        )
        plan = plan_of(
            propose(
                UNIQUE_FAILED,
                the_incident=UNIQUE_INCIDENT,
                files=with_files({STG_ORDERS: model}),
            )
        )
        assert plan.changes[STG_ORDERS] == model + (
            "qualify row_number() over (partition by order_id order by _loaded_at desc) = 1\n"
        )
        assert_sql_intact(model, plan.changes[STG_ORDERS])

    @pytest.mark.parametrize(
        ("name", "attached", "model", "reason"),
        [
            pytest.param(
                "source_unique_raw_orders_ORDER_ID",
                None,
                None,
                "tests the source itself; the problem is in the raw data",
                id="source-test",
            ),
            pytest.param(
                "unique_fct_orders_order_id",
                "fct_orders",
                None,
                "fct_orders is not a staging model reading exactly one source",
                id="not-staging",
            ),
            pytest.param(
                UNIQUE_TEST,
                None,
                "select order_id, max(customer_id) as customer_id from {{ source('raw', 'orders') }} group by order_id",
                "stg_orders already has a group by clause",
                id="aggregating-model",
            ),
        ],
    )
    def test_escalates(self, name: str, attached: str | None, model: str | None, reason: str) -> None:
        manifest = manifest_slice()
        if attached is not None:
            manifest["nodes"][node_id_of_test(name)] = {
                **manifest["nodes"][node_id_of_test(UNIQUE_TEST)],
                "unique_id": node_id_of_test(name),
                "name": name,
                "attached_node": unique_id(attached),
            }
        files = with_files({STG_ORDERS: model}) if model else None
        outcome = propose(
            {**UNIQUE_FAILED, "identifiers": [name]},
            the_incident=incident((node_id_of_test(name), "test", name)),
            manifest=manifest,
            files=files,
        )
        assert reason in escalation_of(outcome).reason


# ---------------------------------------------------------------------------------------------------------------
# accepted_values
# ---------------------------------------------------------------------------------------------------------------

VALUES_TEST = "accepted_values_stg_orders_status__placed__shipped__completed__returned__return_pending"
VALUES_FAILED = {
    "failure_class": "test_accepted_values",
    "action": "repair",
    "summary": f"Data test {VALUES_TEST} failed: Got 1 result, configured to fail if != 0",
    "identifiers": [VALUES_TEST],
    "root_cause": None,
}
VALUES_INCIDENT = incident((node_id_of_test(VALUES_TEST), "test", VALUES_TEST))
FLOW_VALUES = '                values: ["placed", "shipped", "completed", "returned", "return_pending"]\n'

VALUES_GUARD = """\
{{ config(severity='warn') }}
-- Guard test written by airflow-selfheal for inc-0123456789abcdef.
-- accepted_values_stg_orders_status__placed__shipped__completed__returned__return_pending found values of
-- stg_orders.status outside its accepted list. This warn-level test reports, at raw.orders, the values
-- that stg_orders.status would not accept, before any model reads them.
select lower(status) as value_field, count(*) as n_records
from {{ source('raw', 'orders') }}
where lower(status) not in ('placed', 'shipped', 'completed', 'returned', 'return_pending', 'lost')
group by lower(status)
"""


class TestAcceptedValues:
    def test_new_value_is_accepted(self) -> None:
        plan = plan_of(
            propose(
                VALUES_FAILED,
                the_incident=VALUES_INCIDENT,
                failing_rows=[{"VALUE_FIELD": "lost", "N_RECORDS": 3}],
            )
        )
        guard = "tests/selfheal_guard_raw_orders_status_values.sql"
        assert (plan.fix_type, plan.tier, plan.priority) == ("accepted_values", "review", 6)
        assert plan.changes == {
            STAGING_YML: demo_files()[STAGING_YML].replace(
                FLOW_VALUES, FLOW_VALUES.replace('"return_pending"]', '"return_pending", "lost"]')
            ),
            guard: VALUES_GUARD,
        }
        assert plan.guard_tests == {guard: VALUES_GUARD}
        assert "with new value(s) 'lost' (3 rows)" in plan.rationale

    def test_block_list_gets_a_line_per_value(self) -> None:
        block = "                values:\n" + "".join(
            f"                  - {value}\n" for value in STATUS_VALUES
        )
        staging = demo_files()[STAGING_YML].replace(FLOW_VALUES, block)
        plan = plan_of(
            propose(
                VALUES_FAILED,
                the_incident=VALUES_INCIDENT,
                files=with_files({STAGING_YML: staging}),
                failing_rows=[{"value_field": "lost"}, {"value_field": "on hold"}, {"value_field": "yes"}],
            )
        )
        assert plan.changes[STAGING_YML] == staging.replace(
            "                  - return_pending\n",
            "                  - return_pending\n                  - lost\n                  - on hold\n"
            '                  - "yes"\n',
        )

    @pytest.mark.parametrize(
        ("rows", "reason"),
        [
            pytest.param([], "no failing values were given", id="no-rows"),
            pytest.param([{"VALUE_FIELD": "placed"}], "are already accepted", id="already-accepted"),
        ],
    )
    def test_escalates(self, rows: list[dict[str, Any]], reason: str) -> None:
        outcome = propose(VALUES_FAILED, the_incident=VALUES_INCIDENT, failing_rows=rows)
        assert reason in escalation_of(outcome).reason


# ---------------------------------------------------------------------------------------------------------------
# Policy: rules file, escalations, the public types
# ---------------------------------------------------------------------------------------------------------------


class TestPolicy:
    @pytest.mark.parametrize(
        ("failure_class", "reason"),
        [
            pytest.param("missing_column", "no deterministic rule for missing_column", id="no-root-cause"),
            pytest.param("test_not_null", "no deterministic rule for test_not_null", id="not-null"),
            pytest.param("unknown", "no deterministic rule for unknown", id="unknown"),
        ],
    )
    def test_classes_without_a_rule(self, failure_class: str, reason: str) -> None:
        triage = {"failure_class": failure_class, "action": "repair", "summary": "", "root_cause": None}
        assert propose(triage) == Escalation(reason)

    def test_fix_type_not_in_auto_propose(self) -> None:
        rules = load_rules("auto_propose: [type_cast]\n")
        assert propose(RENAME, rules=rules) == Escalation(
            "a column_rename fix applies, but auto_propose in .selfheal/rules.yml does not list column_rename",
            "column_rename",
        )

    def test_protected_model(self) -> None:
        rules = load_rules("protected_models: [stg_orders]\n")
        escalation = escalation_of(propose(RENAME, rules=rules))
        assert escalation.reason == (
            "model stg_orders is protected (protected_models in .selfheal/rules.yml); a person must change it"
        )

    def test_protected_model_blocks_test_edits_too(self) -> None:
        rules = load_rules("protected_models: [stg_orders]\n")
        outcome = propose(
            VALUES_FAILED, the_incident=VALUES_INCIDENT, rules=rules, failing_rows=[{"value_field": "lost"}]
        )
        assert "model stg_orders is protected" in escalation_of(outcome).reason

    @pytest.mark.parametrize(
        ("allowed", "path"),
        [
            pytest.param(
                '["models/staging/**", "models/_sources.yml", "models/**/*.yml"]', ORDERS_GUARD, id="guard"
            ),
            pytest.param('["tests/**", "models/**/*.yml"]', STG_ORDERS, id="model"),
        ],
    )
    def test_disallowed_path(self, allowed: str, path: str) -> None:
        rules = load_rules(f"allowed_paths: {allowed}\n")
        assert escalation_of(propose(RENAME, rules=rules)).reason == (
            f"the column_rename fix would change {path}, which allowed_paths in .selfheal/rules.yml does not allow"
        )

    def test_tier_comes_from_the_rules(self) -> None:
        rules = load_rules("review_tier: [column_rename]\n")
        assert plan_of(propose(RENAME, rules=rules)).tier == "review"
        assert plan_of(propose(UNIQUE_FAILED, the_incident=UNIQUE_INCIDENT, rules=rules)).tier == "auto"

    def test_guard_path_follows_test_paths(self) -> None:
        files = demo_files()
        files["dbt_project.yml"] = files["dbt_project.yml"].replace(
            'test-paths: ["tests"]', 'test-paths: ["checks"]'
        )
        plan = plan_of(
            propose(RENAME, files=files, rules=RulesConfig(allowed_paths=("models/**", "checks/**")))
        )
        assert list(plan.guard_tests) == ["checks/selfheal_guard_raw_orders_columns.sql"]

    def test_missing_sandbox_file(self) -> None:
        files = demo_files()
        del files[STG_ORDERS]
        assert escalation_of(propose(RENAME, files=files)).reason == (
            f"{STG_ORDERS} is not in the sandbox copy of the project"
        )

    def test_unknown_source_table(self) -> None:
        triage = drift_triage(
            "upstream_rename",
            "missing_column",
            kind="column_renamed",
            table="RAW.NOPE",
            column="A",
            new_column="B",
        )
        assert escalation_of(propose(triage)).reason == "no dbt source in the manifest is the table RAW.NOPE"

    def test_inputs_are_not_mutated(self) -> None:
        import copy

        files, manifest = demo_files(), manifest_slice()
        before = copy.deepcopy((RENAME, files, manifest))
        plan_of(propose(RENAME, files=files, manifest=manifest))
        assert (RENAME, files, manifest) == before

    def test_plan_and_escalation_round_trip(self) -> None:
        import json

        plan = plan_of(propose(RENAME))
        assert FixPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
        escalation = Escalation("why", "dedup")
        assert Escalation.from_dict(json.loads(json.dumps(escalation.to_dict()))) == escalation

    def test_plan_requires_guards_inside_changes(self) -> None:
        with pytest.raises(ValueError, match="guard test tests/g.sql must also be in changes"):
            FixPlan("dedup", "review", "why", {}, {"tests/g.sql": "select 1"}, 5)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param("airflow_selfheal.core.fixes", id="fixes"),
        pytest.param("airflow_selfheal.core.rules", id="rules"),
    ],
)
def test_import_loads_neither_sqlglot_nor_airflow(module: str) -> None:
    import json
    import subprocess
    import sys

    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    )
    assert [name for name in loaded if name.split(".")[0] in {"sqlglot", "airflow"}] == []
