"""A fix validated with real dbt in a zero-copy clone of prod, on a private embedded warehouse; prod never changes.

The flow is the repair loop's: raw data loaded, the demo project built into DEMO (prod), the upstream renames
ORDERS.CUSTOMER_EMAIL, prod is cloned, the project is copied into a sandbox and patched there by hand (the real fix
rules are tested elsewhere), and ``dbt build --select stg_orders+`` runs against the clone. The demo's
``_sources.yml`` names ``database: DEMO``, so the validation must point its copy of the sources at the clone, or the
build in the clone would read prod's raw tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dev.loader import load_raw
from dev.scenarios import SCENARIOS
from dev.warehouse import running
from tests.support.demo import DEMO_PROJECT, dbt_build_prod, fingerprint, tree_hash

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dev.warehouse import Warehouse

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONN_ID = "selfheal_validation_test"
STG_ORDERS = "models/staging/stg_orders.sql"
INCIDENT_ID = "inc-validation-0001"
MARKER = "only-in-the-clone@example.com"


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A private stand-in with DEMO.RAW loaded and the demo project built into DEMO.ANALYTICS."""
    with (
        running(tmp_path_factory.mktemp("validation-warehouse")) as warehouse,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", warehouse.airflow_conn_uri())
        patch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
        with warehouse.connect() as conn:
            load_raw(conn)
        results = dbt_build_prod(warehouse, tmp_path_factory.mktemp("prod-dbt"))
        assert {item["status"] for item in results} <= {"success", "pass"}
        yield warehouse


def test_fix_is_validated_in_the_clone_and_prod_is_untouched(prod: Warehouse, tmp_path: Path) -> None:
    from airflow_selfheal.hooks.artifacts import ArtifactStore
    from airflow_selfheal.hooks.dbt import DbtValidationHook
    from airflow_selfheal.hooks.probes import data_diff, probe_relations
    from airflow_selfheal.hooks.sandbox import Sandbox
    from airflow_selfheal.hooks.snowflake_clone import SnowflakeCloneHook

    scenario = SCENARIOS["rename_column"]
    clone_hook = SnowflakeCloneHook(snowflake_conn_id=CONN_ID)
    live_before = tree_hash(DEMO_PROJECT)
    clone = None
    with prod.connect() as conn:
        scenario.apply(conn)
        try:
            prod_before = fingerprint(conn)
            clone = clone_hook.clone_for_incident("DEMO", INCIDENT_ID)
            # A marker only the clone holds: the validation must read the clone's raw data, not prod's.
            cursor = conn.cursor()
            marked_order = cursor.execute("select min(ORDER_ID) from DEMO.RAW.ORDERS").fetchone()[0]
            cursor.execute(
                f'update "{clone.clone_database}".RAW.ORDERS set EMAIL_ADDRESS = %s where ORDER_ID = %s',
                (MARKER, marked_order),
            )
            sandbox = Sandbox.create(DEMO_PROJECT, INCIDENT_ID, root=tmp_path)
            validator = DbtValidationHook(timeout=900)

            # The project as it is fails in the clone, exactly as prod failed.
            broken = validator.build(
                sandbox.project_dir,
                select="stg_orders+",
                target_database=clone.clone_database,
                snowflake_conn_id=CONN_ID,
            )
            assert broken.success is False, broken.logs_excerpt
            assert broken.error is None, broken.error
            assert [failure.unique_id for failure in broken.failures] == ["model.selfheal_demo.stg_orders"]
            assert "CUSTOMER_EMAIL" in (broken.failures[0].message or "").upper()
            assert broken.source_rewrites[0] == {
                "file": "models/staging/_sources.yml",
                "source": "raw",
                "from": "DEMO",
                "to": clone.clone_database,
            }

            # The hand-made fix (the rules engine's output in the real loop) passes, tests included.
            original = sandbox.read(STG_ORDERS)
            fixed = original.replace("    customer_email,", "    email_address as customer_email,")
            assert fixed != original
            sandbox.write_files({STG_ORDERS: fixed}, allowed_paths=["models/**"])
            result = validator.build(
                sandbox.project_dir,
                select="stg_orders+",
                target_database=clone.clone_database,
                snowflake_conn_id=CONN_ID,
            )
            assert result.success, (result.error, result.failures, result.logs_excerpt)
            assert result.is_current(sandbox.files_hash())
            built = {node.unique_id for node in result.nodes}
            assert {"model.selfheal_demo.stg_orders", "model.selfheal_demo.fct_orders"} <= built
            assert any(node.resource_type == "test" for node in result.nodes)
            assert result.attempt == "attempt-2"
            # The sources rewrite lives only in the attempt's copy: the sandbox (the proposal) and the live
            # project still say DEMO, and the proposal changes exactly the model.
            assert "database: DEMO" in sandbox.read("models/staging/_sources.yml")
            assert sandbox.changed_files == [STG_ORDERS]
            assert "+    email_address as customer_email," in sandbox.diff()

            # The fixed model read the clone's raw data: the marker is there, and prod's raw data lacks it.
            marked = cursor.execute(
                f'select CUSTOMER_EMAIL from "{clone.clone_database}".ANALYTICS.STG_ORDERS where ORDER_ID = %s',
                (marked_order,),
            ).fetchone()
            assert marked == (MARKER,)
            assert cursor.execute(
                "select count(*) from DEMO.RAW.ORDERS where EMAIL_ADDRESS = %s", (MARKER,)
            ).fetchone() == (0,)
            probes = probe_relations(
                clone_hook,
                clone.clone_database,
                ["RAW.ORDERS", "ANALYTICS.STG_ORDERS", "ANALYTICS.FCT_ORDERS"],
            )
            stg = probes["relations"]["ANALYTICS.STG_ORDERS"]
            assert stg["row_count"] == 200
            assert len(stg["sample"]["rows"]) == 20
            assert stg["null_counts"]["CUSTOMER_EMAIL"] == 0
            assert "EMAIL_ADDRESS" in [
                column["name"] for column in probes["relations"]["RAW.ORDERS"]["columns"]
            ]
            diff = data_diff(
                clone_hook, ["ANALYTICS.STG_ORDERS", "ANALYTICS.FCT_ORDERS"], clone.clone_database, "DEMO"
            )
            fct = diff["relations"]["ANALYTICS.FCT_ORDERS"]
            assert fct["status"] == "same", fct
            assert fct["clone"]["row_count"] == fct["prod"]["row_count"] == 200
            sandbox.record_evidence("probes", probes)
            sandbox.record_evidence("data_diff", diff)

            # The evidence reaches the shared store, for the next task on another worker.
            store = ArtifactStore(root=f"file://{tmp_path}/artifacts", conn_id="")
            prefix = f"incidents/{INCIDENT_ID}/proposal/{result.files_hash[:12]}"
            published = sandbox.publish(store, prefix)
            assert f"{prefix}/validation/attempt-2/result.json" in published
            assert store.read_json(f"{prefix}/validation/attempt-2/result.json")["success"] is True
            assert store.read_json(f"{prefix}/sandbox.json")["files_hash"] == result.files_hash
            assert store.read_text(f"{prefix}/diff.patch") == sandbox.diff()
            assert "embedded" not in store.read_text(f"{prefix}/validation/attempt-2/dbt.log")

            # A model configured to build into prod is refused before dbt builds anything.
            escape = Sandbox.create(DEMO_PROJECT, f"{INCIDENT_ID}-escape", root=tmp_path)
            escape.write_files(
                {
                    "models/marts/escape.sql": "{{ config(materialized='table', database='DEMO') }}\nselect 1 as id\n"
                },
                allowed_paths=["models/**"],
            )
            refused = validator.build(
                escape.project_dir,
                select="escape",
                target_database=clone.clone_database,
                snowflake_conn_id=CONN_ID,
            )
            assert refused.success is False
            assert refused.nodes == ()
            assert refused.error is not None
            assert refused.error.startswith("refused: model.selfheal_demo.escape would build into 'DEMO'")

            # Prod: identical, schema and contents; the live project: identical.
            assert fingerprint(conn) == prod_before
            assert tree_hash(DEMO_PROJECT) == live_before

            assert clone_hook.drop_clone(clone.clone_database) in ("dropped", "emptied")
            leftover = cursor.execute(
                f'select count(*) from "{clone.clone_database}".INFORMATION_SCHEMA.TABLES '
                "where TABLE_SCHEMA <> 'INFORMATION_SCHEMA'"
            )
            assert leftover.fetchone()[0] == 0
            clone = None
        finally:
            if clone is not None:
                clone_hook.drop_clone(clone.clone_database)
            assert scenario.reset(conn)
