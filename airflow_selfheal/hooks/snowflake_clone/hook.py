"""
Zero-copy clones for the repair loop: clone prod for an incident, verify the clone, drop it, sweep orphans.

A clone's status line is not trusted. Snowflake silently leaves out objects the role cannot see and never clones
external tables; the embedded stand-in answers ``CREATE DATABASE … CLONE`` with success and an empty database.
So every clone is verified against its source: the object list, each object's columns and each table's row count
(a bare ``COUNT(*)``, answered from metadata on Snowflake). Whatever a database or schema clone left out is cloned
table by table, and views are re-created from their DDL pointed at the clone. Views that still read prod by
fully-qualified name are re-created to read the clone instead; any that cannot be are reported.

Statements come from :mod:`airflow_selfheal.core.clone_sql`; this package only runs them and records the outcome.
This module is the hook (the clone's lifecycle: create, verify again, drop, sweep); one attempt's steps are in
:mod:`.run`, :mod:`.views` and :mod:`.verification`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.clone_sql import (
    at_clause,
    clone_name,
    drop_database,
    drop_schema,
    parse_clone_name,
    scan_prod_references,
    schemas_query,
    show_clone_databases,
    split_qualified,
    views_query,
)
from airflow_selfheal.core.identifiers import normalize_identifier
from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook
from airflow_selfheal.hooks.snowflake_clone.results import CloneResult
from airflow_selfheal.hooks.snowflake_clone.run import _CloneRun
from airflow_selfheal.hooks.snowflake_clone.state import ObjectKey, _reason

if TYPE_CHECKING:
    from collections.abc import Sequence


def _drop_database_unsupported(exc: BaseException) -> bool:
    """True for a server without ``DROP DATABASE`` (the stand-in's DuckDB); Snowflake never says this."""
    text = str(exc).lower()
    return "syntax error" in text and "database" in text


class SnowflakeCloneHook(SelfhealSnowflakeHook):
    """
    Clone a database for an incident, verify the clone, drop it, and sweep orphaned clones.

    Connection attributes are inherited from ``SnowflakeHook`` (``snowflake_conn_id``, default
    ``snowflake_default``).

    .. code-block:: python

        hook = SnowflakeCloneHook(snowflake_conn_id="snowflake_prod")
        result = hook.clone_for_incident("PROD_DB", "inc-3f2a9c0d4e5b6a71", at=failed_at)
        try:
            ...  # dbt build --target clone, with database = result.clone_database
        finally:
            hook.drop_clone(result.clone_database)
        hook.sweep_clones(timedelta(hours=24))  # e.g. from a daily maintenance DAG

    :param snowflake_conn_id: Airflow connection id of type ``snowflake``.
    """

    hook_name = "Snowflake clones (selfheal)"

    # ---------------------------------------------------------------------------------------------------------
    # Clone
    # ---------------------------------------------------------------------------------------------------------

    def clone_for_incident(
        self,
        source_database: str,
        incident_id: str,
        *,
        schemas: Sequence[str] | None = None,
        tables: Sequence[str] | None = None,
        at: datetime | None = None,
    ) -> CloneResult:
        """
        Make a verified zero-copy clone of ``source_database`` (or some of its schemas or tables) for an incident.

        Without ``schemas`` and ``tables`` this runs ``CREATE DATABASE <clone> CLONE <source>``; with ``schemas``,
        an empty database and one ``CREATE SCHEMA … CLONE`` each; with ``tables``, one ``CREATE TABLE … CLONE``
        each. Then it compares the clone with the source and clones whatever is missing table by table, and
        re-creates missing views from their DDL pointed at the clone. The source is only read.

        When ``at`` is given and the warehouse rejects the time-travel clause (the stand-in has no time travel,
        Snowflake refuses moments outside the retention period), the clone is made of the current state instead
        and :attr:`CloneResult.at_ignored_reason` says so.

        :param source_database: the prod database, e.g. ``PROD_DB`` (as written in SQL: ``prod_db`` is
            ``PROD_DB``).
        :param incident_id: the incident's id; the clone's name is unique per incident and creation time.
        :param schemas: clone only these schemas.
        :param tables: clone only these tables, ``SCHEMA.TABLE`` or ``DATABASE.SCHEMA.TABLE``.
        :param at: clone the state at this moment (timezone-aware), e.g. the failure time.
        :return: the result; check :attr:`CloneResult.verified`.
        :raises ValueError: on bad arguments (nothing is created).
        """
        if schemas is not None and tables is not None:
            raise ValueError("pass schemas or tables, not both")
        source = normalize_identifier(source_database)
        schema_names = None if schemas is None else sorted({normalize_identifier(name) for name in schemas})
        if schema_names is not None and not schema_names:
            raise ValueError("schemas must not be empty; pass None to clone the whole database")
        table_keys = None if tables is None else sorted({self._table_key(name, source) for name in tables})
        if table_keys is not None and not table_keys:
            raise ValueError("tables must not be empty; pass None to clone the whole database")
        if at is not None:
            at_clause(at)  # refuses a naive datetime before anything is created
        created_at = datetime.now(timezone.utc).replace(microsecond=0)
        name = clone_name(source, incident_id, created_at=created_at)

        conn = self.get_conn()
        run = _CloneRun(self, conn, source=source, clone=name, at=at)
        try:
            return run.execute(incident_id, schema_names, table_keys, created_at)
        except Exception:
            if run.created:
                self.log.warning("cloning %s failed; dropping the partial clone %s", source, name)
                try:
                    self._drop(conn, name)
                except Exception:
                    self.log.exception("could not drop the partial clone %s; the TTL sweep will", name)
            raise
        finally:
            conn.close()

    @staticmethod
    def _table_key(name: str, source: str) -> ObjectKey:
        parts = split_qualified(name)
        if len(parts) == 3 and parts[0] == source:
            parts = parts[1:]
        if len(parts) != 2:
            raise ValueError(f"tables must be SCHEMA.TABLE or {source}.SCHEMA.TABLE, got {name!r}")
        return parts[0], parts[1]

    # ---------------------------------------------------------------------------------------------------------
    # Views
    # ---------------------------------------------------------------------------------------------------------

    def views_referencing(self, database: str, prod_database: str) -> dict[str, list[str]]:
        """
        The views of ``database`` whose DDL still names ``prod_database`` explicitly.

        :param database: the database to look in (a clone), stored form.
        :param prod_database: the prod database, stored form.
        :return: ``SCHEMA.VIEW`` -> fully-qualified prod objects it reads; views without any are left out.
        """
        conn = self.get_conn()
        try:
            rows = self._query(conn, views_query(database), None)
        finally:
            conn.close()
        found: dict[str, list[str]] = {}
        for schema, view, definition in rows:
            references = scan_prod_references(definition or "", prod_database).references
            if references:
                found[f"{schema}.{view}"] = list(references)
        return found

    def repoint_views(self, clone_database: str, source_database: str) -> dict[str, str]:
        """
        Re-create the views of a clone that read ``source_database`` so that they read the clone.

        :param clone_database: a selfheal clone (any other name is refused: this writes DDL).
        :param source_database: the database the clone was made from, stored form.
        :return: ``SCHEMA.VIEW`` -> ``repointed`` or the reason it could not be.
        :raises ValueError: if ``clone_database`` is not a selfheal clone name.
        """
        self._require_clone_name(clone_database, "repoint views in")
        conn = self.get_conn()
        try:
            run = _CloneRun(self, conn, source=source_database, clone=clone_database, at=None)
            return run.repoint_views(run.inventory(clone_database, None).views)
        finally:
            conn.close()

    def verify_clone(self, result: CloneResult, *, schemas: Sequence[str] | None = None) -> CloneResult:
        """
        Verify an existing clone against its source again, e.g. after dbt built the views its text could not.

        The same checks as :meth:`clone_for_incident` (objects, columns, row counts, views reading prod); nothing
        is created.

        :param result: the clone's earlier result.
        :param schemas: the schemas the clone was made of (None: the whole database).
        :return: a new result; its ``missing`` holds only what is still absent or different.
        :raises ValueError: if the result does not name a selfheal clone.
        """
        self._require_clone_name(result.clone_database, "verify")
        at = None
        if result.at and not result.at_ignored_reason:
            at = datetime.fromisoformat(result.at)
        scope = None if schemas is None else sorted({normalize_identifier(name) for name in schemas})
        conn = self.get_conn()
        try:
            run = _CloneRun(self, conn, source=result.source_database, clone=result.clone_database, at=at)
            run.at_ignored_reason = result.at_ignored_reason
            run.fallback_reason = result.fallback_reason
            run.notes = list(result.notes)
            source = run.inventory(run.source, scope)
            expected_tables, expected_views = run._expected(source, None)
            if at is not None:
                run.at_applied.update(expected_tables)
            final = run.inventory(run.clone, scope)
            verified = run._verify(
                result.incident_id,
                result.strategy,
                datetime.fromisoformat(result.created_at),
                source,
                final,
                expected_tables,
                expected_views,
            )
        finally:
            conn.close()
        return CloneResult.from_dict({**verified.to_dict(), "notes": list(dict.fromkeys(verified.notes))})

    # ---------------------------------------------------------------------------------------------------------
    # Drop and sweep
    # ---------------------------------------------------------------------------------------------------------

    @staticmethod
    def _require_clone_name(name: str, action: str) -> None:
        if parse_clone_name(name) is None:
            raise ValueError(
                f"refusing to {action} {name!r}: it is not a selfheal clone name "
                "(<SOURCE>__SELFHEAL_<INCIDENT>__<YYYYMMDDTHHMMSSZ>)"
            )

    def drop_clone(self, name: str) -> str:
        """
        Drop a selfheal clone. Any other name is refused, so prod can never be dropped through this hook.

        On a warehouse without ``DROP DATABASE`` (the embedded stand-in), every schema of the clone is dropped
        instead and the empty database stays listed.

        :param name: the clone's name as returned in :attr:`CloneResult.clone_database`.
        :return: ``dropped``, ``emptied`` (stand-in fallback) or ``already_empty`` (stand-in, nothing left).
        :raises ValueError: if ``name`` is not a selfheal clone name.
        """
        self._require_clone_name(name, "drop")
        conn = self.get_conn()
        try:
            return self._drop(conn, name)
        finally:
            conn.close()

    def _drop(self, conn: Any, name: str) -> str:
        from snowflake.connector.errors import ProgrammingError

        self._require_clone_name(name, "drop")
        try:
            self._execute(conn, drop_database(name))
        except ProgrammingError as exc:
            if not _drop_database_unsupported(exc):
                raise
            self.log.warning(
                "this warehouse cannot DROP DATABASE (%s); dropping every schema of %s instead",
                _reason(exc),
                name,
            )
        else:
            return "dropped"
        schemas = [str(row[0]) for row in self._query(conn, schemas_query(name), None)]
        for schema in schemas:
            self._execute(conn, drop_schema((name, schema)))
        return "emptied" if schemas else "already_empty"

    def sweep_clones(self, ttl: timedelta, now: datetime | None = None) -> list[str]:
        """
        Drop every selfheal clone older than ``ttl``, judged by the creation time in its name.

        :param ttl: how long a clone may live; a repair run's own cleanup drops it sooner.
        :param now: the reference time (timezone-aware); default now.
        :return: the clones dropped (or emptied, on the stand-in), sorted.
        :raises RuntimeError: if some expired clones could not be dropped (after trying all of them).
        """
        from snowflake.connector.errors import ProgrammingError

        if ttl < timedelta(0):
            raise ValueError(f"ttl must not be negative, got {ttl}")
        moment = now or datetime.now(timezone.utc)
        if moment.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        conn = self.get_conn()
        swept: list[str] = []
        failures: dict[str, str] = {}
        try:
            rows = self._query(conn, show_clone_databases(), None, as_dict=True)
            for database in sorted({str(row.get("name")) for row in rows}):
                info = parse_clone_name(database)
                if info is None or info.created_at > moment - ttl:
                    continue
                try:
                    outcome = self._drop(conn, info.name)
                except ProgrammingError as exc:
                    failures[info.name] = _reason(exc)
                    continue
                if outcome != "already_empty":
                    self.log.info("swept clone %s (%s, created %s)", info.name, outcome, info.created_at)
                    swept.append(info.name)
        finally:
            conn.close()
        if failures:
            raise RuntimeError(f"swept {swept}, but could not drop {failures}")
        return swept

    def _execute(self, conn: Any, sql: str) -> None:
        """Run one DDL statement and log it."""
        self.log.info("%s", sql)
        cursor = conn.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
