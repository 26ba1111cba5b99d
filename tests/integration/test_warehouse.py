"""The embedded stand-in, reached through the real connector and the package's hook."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from dev.warehouse import Warehouse, WarehouseError, free_port, running, start

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def test_package_hook_reaches_stand_in(warehouse: Warehouse) -> None:
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

    hook = SelfhealSnowflakeHook(snowflake_conn_id="selfheal_warehouse")
    hook.run("create schema if not exists DEMO.HOOK_CHECK")
    hook.run("create or replace table DEMO.HOOK_CHECK.T (ID int, NAME varchar)")
    hook.run("insert into DEMO.HOOK_CHECK.T values (1, 'a'), (2, 'b')")
    assert hook.get_first("select count(*) from DEMO.HOOK_CHECK.T") == (2,)
    assert hook.conn_params["protocol"] == "http"


def test_data_persists_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "wh"
    with running(data_dir) as first:
        with first.connect() as conn:
            conn.cursor().execute("create schema if not exists DEMO.KEEP")
            conn.cursor().execute("create or replace table DEMO.KEEP.T (ID int)")
            conn.cursor().execute("insert into DEMO.KEEP.T values (41), (42)")
    assert (data_dir / "DEMO.db").is_file()
    with running(data_dir) as second, second.connect() as conn:
        rows = conn.cursor().execute("select ID from DEMO.KEEP.T order by ID").fetchall()
    assert rows == [(41,), (42,)]


def test_taken_port_gives_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(WarehouseError, match=f"port {port} on 127.0.0.1 is already in use"):
            start(port=port, data_dir=tmp_path / "wh")
