"""Benchmarks (not tests): `make bench`, or `python -m dev.bench drift|parse|triage [--repeat 5]`.

triage: classify 20 kB dbt logs (progress lines, then the error: a code the table knows, a wording only a
pattern knows, and a message nothing knows, which pays for every rule) and report the median milliseconds per
message, against one bare regex scan of the same log in the same run.

parse: how long the example pipeline DAG file takes to parse, cold (a fresh interpreter with Airflow already
imported, as a DAG processor pays it) and warm (re-parsed in the same process), against a trivial one-task
DAG file measured the same way in the same run.

drift: snapshot and diff a schema of N tables x M columns on the embedded warehouse, through the package's
hook and the real connector. Reports the median snapshot time, diff time, metadata query count, and the
ratio of the snapshot time to one bare ``select`` of the same information_schema rows in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dev import airflow_env
from dev.warehouse import Warehouse, free_port, running


def _build_schema(warehouse: Warehouse, tables: int, columns: int) -> None:
    types = ["NUMBER(38,0)", "VARCHAR", "NUMBER(10,2)", "TIMESTAMP_NTZ", "BOOLEAN", "DATE", "FLOAT"]
    with warehouse.connect() as conn:
        cursor = conn.cursor()
        cursor.execute("create schema if not exists DEMO.BENCH")
        for index in range(tables):
            cols = ", ".join(f"C{c:02d} {types[(index + c) % len(types)]}" for c in range(columns))
            cursor.execute(f"create or replace table DEMO.BENCH.T{index:04d} ({cols})")


def bench_drift(tables: int, columns: int, repeat: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="selfheal-bench-") as tmp:
        port = free_port()
        warehouse = Warehouse("127.0.0.1", port, Path(tmp) / "wh")
        airflow_env.apply(airflow_env.airflow_environ(Path(tmp) / "airflow", warehouse))
        with running(warehouse.data_dir, port=port) as warehouse:
            started = time.perf_counter()
            _build_schema(warehouse, tables, columns)
            setup_s = time.perf_counter() - started

            from airflow_selfheal.core.drift import SchemaSnapshot, diff_snapshots
            from airflow_selfheal.hooks.schemas import capture_snapshot
            from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook, columns_query

            targets = [("DEMO", "BENCH", f"T{i:04d}") for i in range(tables)]
            snapshot_times, bare_times, diff_times, queries = [], [], [], []
            baseline: SchemaSnapshot | None = None
            for _ in range(repeat):
                hook = SelfhealSnowflakeHook(snowflake_conn_id=airflow_env.WAREHOUSE_CONN_ID)
                conn = hook.get_conn()  # warm the connection path for the bare query as for the hook
                started = time.perf_counter()
                cursor = conn.cursor()
                cursor.execute(columns_query("DEMO", 1), ("BENCH",))
                bare_rows = len(cursor.fetchall())
                bare_times.append(time.perf_counter() - started)
                conn.close()

                started = time.perf_counter()
                snapshot = capture_snapshot(hook, targets)
                snapshot_times.append(time.perf_counter() - started)
                queries.append(hook.metadata_queries)

                baseline = baseline or snapshot
                started = time.perf_counter()
                report = diff_snapshots(baseline, snapshot, expected_tables=[".".join(t) for t in targets])
                diff_times.append(time.perf_counter() - started)
                assert report.status == "clean", report.headline  # noqa: S101
            snapshot_s = statistics.median(snapshot_times)
            bare_s = statistics.median(bare_times)
            return {
                "tables": tables,
                "columns_per_table": columns,
                "rows": bare_rows,
                "repeat": repeat,
                "setup_s": round(setup_s, 2),
                "snapshot_median_s": round(snapshot_s, 4),
                "bare_select_median_s": round(bare_s, 4),
                "snapshot_to_bare_ratio": round(snapshot_s / bare_s, 2),
                "diff_median_s": round(statistics.median(diff_times), 4),
                "metadata_queries_per_snapshot": sorted(set(queries)),
            }


_PARSE_PROBE = """
import json, sys, time
import airflow  # paid by every DAG processor anyway; excluded from the figure
from airflow.dag_processing.dagbag import DagBag
times = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    bag = DagBag(dag_folder=sys.argv[1])
    times.append(time.perf_counter() - started)
    assert bag.dags and not bag.import_errors, bag.import_errors
print(json.dumps(times))
"""

_TRIVIAL_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG(dag_id="trivial", schedule=None, start_date=datetime(2026, 1, 1)):
    EmptyOperator(task_id="noop")
"""


def bench_parse(repeat: int) -> dict[str, object]:
    import subprocess

    with tempfile.TemporaryDirectory(prefix="selfheal-bench-") as tmp:
        warehouse = Warehouse("127.0.0.1", free_port(), Path(tmp) / "wh")
        env = {**os.environ, **airflow_env.airflow_environ(Path(tmp) / "airflow", warehouse)}
        manifest = airflow_env.DEMO_PROJECT / "target" / "manifest.json"
        if not manifest.exists():
            os.environ.update(env)
            airflow_env.dbt_parse()
        trivial = Path(tmp) / "trivial_dag.py"
        trivial.write_text(_TRIVIAL_DAG)
        pipeline = airflow_env.DAGS_FOLDER / "dbt_pipeline.py"

        def measure(path: Path) -> tuple[list[float], list[float]]:
            cold, warm = [], []
            for _ in range(repeat):
                out = subprocess.run(
                    [sys.executable, "-c", _PARSE_PROBE, str(path), "3"],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                times = json.loads(out.strip().splitlines()[-1])
                cold.append(times[0])
                warm.extend(times[1:])
            return cold, warm

        pipeline_cold, pipeline_warm = measure(pipeline)
        trivial_cold, trivial_warm = measure(trivial)
        med = statistics.median
        return {
            "repeat": repeat,
            "pipeline_cold_median_s": round(med(pipeline_cold), 3),
            "pipeline_warm_median_s": round(med(pipeline_warm), 3),
            "trivial_cold_median_s": round(med(trivial_cold), 3),
            "trivial_warm_median_s": round(med(trivial_warm), 3),
            "cold_ratio_pipeline_to_trivial": round(med(pipeline_cold) / med(trivial_cold), 1),
            "warm_ratio_pipeline_to_trivial": round(med(pipeline_warm) / med(trivial_warm), 1),
        }


_TRIAGE_ERRORS = {
    "code": "Database Error in model fct_orders (models/fct_orders.sql)\n"
    "  100038 (22018): Numeric value '' is not recognized\n",
    "pattern": "Database Error in model stg_events (models/stg_events.sql)\n"
    '  Binder Error: Referenced column "EVENT_TS" not found in FROM clause!\n',
    "unknown": "Something went wrong that no rule describes, in a line of its own\n",
}


def bench_triage(repeat: int, size: int = 20_000, rounds: int = 200) -> dict[str, object]:
    import re

    from airflow_selfheal.core.triage import classify

    progress = (
        "[2026-01-01, 00:00:00 UTC] {subprocess.py:93} INFO - 07:46:08  12 of 900 START sql view model "
        "ANALYTICS.stg_thing ........................ [RUN]\n"
    )
    scan = re.compile(r"invalid identifier '(?P<column>[^'\n]{1,255})'", re.IGNORECASE)
    results: dict[str, object] = {"log_chars": size, "messages_per_sample": rounds}
    for name, error in _TRIAGE_ERRORS.items():
        log = progress * ((size - len(error)) // len(progress)) + error
        per_message, per_scan = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(rounds):
                classify(log)
            per_message.append((time.perf_counter() - start) * 1000 / rounds)
            start = time.perf_counter()
            for _ in range(rounds):
                scan.search(log)
            per_scan.append((time.perf_counter() - start) * 1000 / rounds)
        message_ms, scan_ms = statistics.median(per_message), statistics.median(per_scan)
        results[name] = {
            "ms_per_message": round(message_ms, 3),
            "ms_per_bare_regex_scan": round(scan_ms, 4),
            "ratio_to_one_scan": round(message_ms / scan_ms, 1) if scan_ms else None,
            "class": classify(log).failure_class.value,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dev.bench")
    parser.add_argument(
        "suite", nargs="*", default=["drift", "parse", "triage"], choices=["drift", "parse", "triage"]
    )
    parser.add_argument("--tables", type=int, default=int(os.environ.get("BENCH_TABLES", 500)))
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    results = {}
    if "parse" in args.suite:
        results["parse"] = bench_parse(args.repeat)
    if "triage" in args.suite:
        results["triage"] = bench_triage(args.repeat)
    if "drift" in args.suite:
        results["drift"] = bench_drift(args.tables, args.columns, args.repeat)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
