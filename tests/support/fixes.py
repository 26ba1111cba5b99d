"""
The demo dbt project as the fix rules see it: its files, a manifest slice, incidents, triages, ``propose``.

Shared by the tests of :mod:`airflow_selfheal.core.fixes` and of the repair's selectors; it holds no tests itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import sqlglot

from airflow_selfheal.core.fixes import Escalation, FixPlan, propose_fix
from airflow_selfheal.core.rules import RulesConfig

DEMO = Path(__file__).resolve().parents[2] / "dev" / "demo_project"
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


# The failed data tests of the dedup and accepted_values rules, also used by the policy tests.
UNIQUE_TEST = "unique_stg_orders_order_id"
UNIQUE_FAILED = {
    "failure_class": "test_unique",
    "action": "repair",
    "summary": "Data test unique_stg_orders_order_id failed: Got 2 results, configured to fail if != 0",
    "identifiers": [UNIQUE_TEST],
    "root_cause": None,
}
UNIQUE_INCIDENT = incident((node_id_of_test(UNIQUE_TEST), "test", UNIQUE_TEST))


VALUES_TEST = "accepted_values_stg_orders_status__placed__shipped__completed__returned__return_pending"
VALUES_FAILED = {
    "failure_class": "test_accepted_values",
    "action": "repair",
    "summary": f"Data test {VALUES_TEST} failed: Got 1 result, configured to fail if != 0",
    "identifiers": [VALUES_TEST],
    "root_cause": None,
}
VALUES_INCIDENT = incident((node_id_of_test(VALUES_TEST), "test", VALUES_TEST))
