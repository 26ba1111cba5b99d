"""The ``drift`` commands: check live source schemas against the accepted baseline, snapshot, accept, history."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_selfheal.cli.inputs import table_name
from airflow_selfheal.cli.output import emit, print_json

if TYPE_CHECKING:
    import argparse


def _capture(args: argparse.Namespace) -> tuple[Any, list[tuple[str, str, str]]]:
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    from airflow_selfheal.hooks.schemas import capture_snapshot, connection_database, resolve_targets
    from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook

    # The arguments first: a wrong one is reported without waiting for the warehouse.
    if args.manifest:
        _check_manifest(Path(args.manifest))
    elif not args.tables:
        raise ValueError(
            "name the tables to watch: pass --manifest target/manifest.json (its sources) or "
            "--tables DB.SCHEMA.TABLE ..."
        )
    hook = SelfhealSnowflakeHook(snowflake_conn_id=args.conn_id)
    try:
        database = connection_database(hook)
    except AirflowNotFoundException:
        raise ValueError(
            f"the Snowflake connection {args.conn_id!r} is not defined: pass --conn-id with one that is, or "
            f"define it (AIRFLOW_CONN_{args.conn_id.upper()} or `airflow connections add {args.conn_id}`)"
        ) from None
    targets = resolve_targets(
        manifest_path=args.manifest, tables=args.tables or None, default_database=database
    )
    return capture_snapshot(hook, targets), targets


def _check_manifest(path: Path) -> None:
    """Refuse a --manifest that is no dbt manifest, naming what it is instead."""
    from airflow_selfheal.cli.inputs import artifact_kind, other_artifact, read_text_input
    from airflow_selfheal.core.manifest import check_manifest

    text = read_text_input(path, expected="target/manifest.json (run `dbt parse` to write it)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}): run `dbt parse` to write "
            "target/manifest.json again, then pass it"
        ) from None
    refused = other_artifact(path, artifact_kind(data), "manifest")
    if refused is not None:
        raise refused
    check_manifest(data, str(path))


def cmd_drift_check(args: argparse.Namespace) -> int:
    """Compare live schemas with the accepted baseline."""
    from airflow_selfheal.core.drift import diff_snapshots
    from airflow_selfheal.records.baselines import BaselineStore

    # The baseline before the warehouse: a broken one is reported without a connection.
    current = BaselineStore(args.baseline).current_snapshot()
    snapshot, targets = _capture(args)
    baseline = current[1] if current else None
    report = diff_snapshots(baseline, snapshot, expected_tables=[".".join(t) for t in targets])
    if args.json:
        print_json({**report.to_dict(), "baseline_version": current and current[0]})
    else:
        emit(
            f"{args.baseline}: {report.headline}" + (f" [{report.fingerprint}]" if report.fingerprint else "")
        )
        for event in report.breaking_events:
            emit(f"  - {event.message}")
        if report.non_breaking_events:
            emit(f"  non-breaking ({len(report.non_breaking_events)}, not notified):")
            for event in report.non_breaking_events:
                emit(f"  - {event.message}")
    return 1 if report.status == "drift_detected" else 0


def cmd_drift_snapshot(args: argparse.Namespace) -> int:
    """Record a snapshot; accept it with --accept."""
    from airflow_selfheal.records.baselines import BaselineStore

    baselines = BaselineStore(args.baseline)
    snapshot, _ = _capture(args)
    version = baselines.record(snapshot.to_dict(), snapshot.content_hash)
    emit(f"recorded {version} ({len(snapshot.tables)} tables)")
    if args.accept:
        baselines.accept(version, accepted_by=args.by, reason=args.reason)
        emit(f"accepted {version} as the baseline of {args.baseline}")
    return 0


def cmd_drift_accept(args: argparse.Namespace) -> int:
    """Accept a recorded snapshot as the baseline."""
    from airflow_selfheal.records.baselines import BaselineStore

    record = BaselineStore(args.baseline).accept(args.version, accepted_by=args.by, reason=args.reason)
    print_json(record)
    return 0


def cmd_drift_history(args: argparse.Namespace) -> int:
    """List acceptances and recorded versions."""
    from airflow_selfheal.records.baselines import BaselineStore

    baselines = BaselineStore(args.baseline)
    history = baselines.history()
    accepted = history[-1]["version"] if history else None
    for record in history:
        emit(
            f"accepted {record['version']} by {record['accepted_by']} at {record['accepted_at']}: {record['reason']}"
        )
    for version in baselines.versions():
        emit(f"{'*' if version == accepted else ' '} {version}")
    return 0


def add_drift_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register ``drift check|snapshot|accept|history``.

    :param subparsers: the CLI's top-level command groups (``parser.add_subparsers(...)``).
    """
    drift = subparsers.add_parser("drift", help="source schema drift").add_subparsers(
        dest="command", required=True
    )

    def with_targets(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("baseline", help="baseline name, e.g. shop_raw")
        sub.add_argument("--conn-id", default="snowflake_default", help="Snowflake connection id")
        sub.add_argument("--manifest", help="dbt manifest.json whose sources are watched")
        sub.add_argument(
            "--tables",
            nargs="*",
            type=table_name,
            help="DB.SCHEMA.TABLE (or SCHEMA.TABLE) names instead of the manifest's sources",
        )
        return sub

    check = with_targets(drift.add_parser("check", help="compare live schemas with the accepted baseline"))
    check.add_argument("--json", action="store_true", help="print the full report as JSON")
    check.set_defaults(func=cmd_drift_check)

    snap = with_targets(drift.add_parser("snapshot", help="record the live schemas as a new version"))
    snap.add_argument("--accept", action="store_true", help="also make it the baseline")
    snap.add_argument("--by", default=getpass.getuser(), help="who accepts (recorded)")
    snap.add_argument("--reason", default="accepted from the CLI")
    snap.set_defaults(func=cmd_drift_snapshot)

    accept = drift.add_parser("accept", help="make a recorded version the baseline")
    accept.add_argument("baseline")
    accept.add_argument("version")
    accept.add_argument("--by", default=getpass.getuser())
    accept.add_argument("--reason", default="accepted from the CLI")
    accept.set_defaults(func=cmd_drift_accept)

    history = drift.add_parser("history", help="acceptances and recorded versions")
    history.add_argument("baseline")
    history.set_defaults(func=cmd_drift_history)
