"""Waiting, bounded and with backoff, for an unreachable warehouse to answer before anything is re-run."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.contracts import WarehouseWait

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import timedelta

log = logging.getLogger(__name__)

#: The first pause between two ``select 1`` probes of an unreachable warehouse; it doubles up to the max.
WAREHOUSE_PROBE_FIRST_DELAY = 2.0
WAREHOUSE_PROBE_MAX_DELAY = 60.0
ERROR_LIMIT = 4_000


class WarehouseUnreachableError(RuntimeError):
    """The warehouse did not answer within the retry's bound; the message says for how long it was probed."""


def wait_for_warehouse(
    conn_id: str,
    timeout: timedelta,
    *,
    first_delay: float = WAREHOUSE_PROBE_FIRST_DELAY,
    max_delay: float = WAREHOUSE_PROBE_MAX_DELAY,
    probe: Callable[[], Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> WarehouseWait:
    """
    Probe the warehouse with ``select 1`` until it answers, pausing ``first_delay`` seconds, doubled each time.

    It probes at least once, and no new probe starts after ``timeout``; one probe can outlast it by the
    connector's own connect timeout.

    :param conn_id: the Snowflake connection, probed through ``SelfhealSnowflakeHook``.
    :param timeout: how long to keep probing.
    :param probe: the probe (default: ``select 1`` on a fresh hook, so a fixed connection is picked up).
    :return: ``answered``, ``attempts`` and ``waited_seconds``.
    :raises WarehouseUnreachableError: when no probe succeeded within ``timeout``; the message names the
        connection, how long it waited, the attempts and the last error (redacted).
    """
    from airflow_selfheal.core.redaction import redact

    if probe is None:

        def probe() -> Any:
            from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

            return SelfhealSnowflakeHook(snowflake_conn_id=conn_id).get_first("select 1")

    started = clock()
    delay = first_delay
    attempts = 0
    while True:
        attempts += 1
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - every failure to answer is what is waited out
            last_error = redact(f"{type(exc).__name__}: {exc}")[:ERROR_LIMIT]
            log.warning("The warehouse (connection %s) does not answer yet: %s", conn_id, last_error)
        else:
            waited = round(clock() - started, 1)
            log.info(
                "The warehouse (connection %s) answered after %s attempt(s), %ss", conn_id, attempts, waited
            )
            return WarehouseWait(answered=True, attempts=attempts, waited_seconds=waited)
        elapsed = clock() - started
        if elapsed >= timeout.total_seconds():
            raise WarehouseUnreachableError(
                f"the warehouse (connection {conn_id!r}) did not answer `select 1` within {timeout} "
                f"(waited {elapsed:.1f}s, {attempts} attempt(s)); last error: {last_error}. Nothing was re-run. "
                "Fix the warehouse or the network (or the connection), then clear the retry task, "
                "or raise RepairConfig.warehouse_wait for longer outages."
            )
        # The last pause is cut short so that one probe happens at the bound itself.
        sleep(min(delay, timeout.total_seconds() - elapsed))
        delay = min(delay * 2, max_delay)
