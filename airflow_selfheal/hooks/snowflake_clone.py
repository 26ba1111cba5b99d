"""
Zero-copy clones for the repair loop: clone prod for an incident, verify the clone, drop it, sweep orphans.

A clone's status line is not trusted. Snowflake silently leaves out objects the role cannot see and never clones
external tables; the embedded stand-in answers ``CREATE DATABASE … CLONE`` with success and an empty database.
So every clone is verified against its source: the object list, each object's columns and each table's row count
(a bare ``COUNT(*)``, answered from metadata on Snowflake). Whatever a database or schema clone left out is cloned
table by table, and views are re-created from their DDL pointed at the clone. Views that still read prod by
fully-qualified name are re-created to read the clone instead; any that cannot be are reported.

Statements come from :mod:`airflow_selfheal.core.clone_sql`; this module only runs them and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from airflow_selfheal.core.clone_sql import (
    at_clause,
    clone_database,
    clone_name,
    clone_schema,
    clone_table,
    create_database,
    create_schema,
    drop_database,
    drop_schema,
    drop_view,
    parse_clone_name,
    row_counts_query,
    scan_prod_references,
    schemas_query,
    show_clone_databases,
    split_qualified,
    tables_query,
    view_ddl_candidates,
    view_rows_check_query,
    views_query,
)
from airflow_selfheal.core.drift import SchemaSnapshot, diff_snapshots
from airflow_selfheal.core.identifiers import normalize_identifier, qualified
from airflow_selfheal.hooks.snowflake import SelfhealSnowflakeHook, columns_query

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

STRATEGIES = ("database", "tables")
DROP_OUTCOMES = ("dropped", "emptied", "already_empty")
#: Tables per ``COUNT(*)`` statement; one statement per chunk keeps the SQL text bounded.
COUNT_CHUNK = 100
_TABLE_TYPES = frozenset({"BASE TABLE"})
_VIEW_TYPES = frozenset({"VIEW", "MATERIALIZED VIEW"})
_NOT_CLONED = {
    "EXTERNAL TABLE": "Snowflake never clones external tables",
    "TEMPORARY TABLE": "temporary tables belong to one session and are never cloned",
}

ObjectKey = tuple[str, str]


def _key_text(key: ObjectKey) -> str:
    return f"{key[0]}.{key[1]}"


def _reason(exc: BaseException) -> str:
    """The first line of an error, bounded, for a result that travels through XCom."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:500]


def _drop_database_unsupported(exc: BaseException) -> bool:
    """True for a server without ``DROP DATABASE`` (the stand-in's DuckDB); Snowflake never says this."""
    text = str(exc).lower()
    return "syntax error" in text and "database" in text


@dataclass(frozen=True)
class CloneResult:
    """
    What :meth:`SnowflakeCloneHook.clone_for_incident` made and what it found when it checked.

    .. code-block:: python

        result = hook.clone_for_incident("PROD_DB", incident.incident_id, at=incident.failed_at)
        if not result.verified:
            raise AirflowException(f"clone incomplete: {result.missing} {result.prod_references}")
        return result.to_dict()

    :param clone_database: the clone's name.
    :param source_database: the database it was cloned from.
    :param incident_id: the incident it belongs to.
    :param strategy: ``database`` when the whole-database clone was complete by itself, ``tables`` when some or
        all tables were cloned one by one (asked for, or a database/schema clone left them out).
    :param tables: ``SCHEMA.TABLE`` of every table in the clone that was checked.
    :param views: ``SCHEMA.VIEW`` of every view in the clone that was checked.
    :param missing: ``(object, reason)`` for every object that is absent or differs from its source.
    :param prod_references: ``SCHEMA.VIEW`` -> the fully-qualified prod objects that view in the clone still
        reads.
    :param verified: True only if nothing is missing, no view reads prod and the row counts could be compared.
    :param row_counts: ``SCHEMA.TABLE`` -> rows in the clone.
    :param at: the requested time-travel moment (ISO-8601), or None.
    :param at_ignored_reason: why the clone holds the current state instead of ``at``, or None.
    :param fallback_reason: why a database or schema clone was not used as is, or None.
    :param notes: anything else worth a look (e.g. a view DDL scanned by regex).
    :param created_at: when the clone was made (ISO-8601 UTC), as encoded in its name.
    """

    clone_database: str
    source_database: str
    incident_id: str
    strategy: str
    tables: tuple[str, ...]
    views: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]
    prod_references: Mapping[str, tuple[str, ...]]
    verified: bool
    row_counts: Mapping[str, int]
    at: str | None
    at_ignored_reason: str | None
    fallback_reason: str | None
    notes: tuple[str, ...]
    created_at: str

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")

    def to_dict(self) -> dict[str, Any]:
        """
        A JSON-compatible dict for XCom.

        :return: every field; ``missing`` as ``[{"object": ..., "reason": ...}]``.
        """
        return {
            "clone_database": self.clone_database,
            "source_database": self.source_database,
            "incident_id": self.incident_id,
            "strategy": self.strategy,
            "tables": list(self.tables),
            "views": list(self.views),
            "missing": [{"object": name, "reason": reason} for name, reason in self.missing],
            "prod_references": {view: list(refs) for view, refs in self.prod_references.items()},
            "verified": self.verified,
            "row_counts": dict(self.row_counts),
            "at": self.at,
            "at_ignored_reason": self.at_ignored_reason,
            "fallback_reason": self.fallback_reason,
            "notes": list(self.notes),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CloneResult:
        """
        Rebuild a result from :meth:`to_dict` output.

        :param data: the dict.
        :return: the result.
        """
        return cls(
            clone_database=str(data["clone_database"]),
            source_database=str(data["source_database"]),
            incident_id=str(data["incident_id"]),
            strategy=str(data["strategy"]),
            tables=tuple(data["tables"]),
            views=tuple(data["views"]),
            missing=tuple((str(item["object"]), str(item["reason"])) for item in data["missing"]),
            prod_references={view: tuple(refs) for view, refs in data["prod_references"].items()},
            verified=bool(data["verified"]),
            row_counts={name: int(count) for name, count in data["row_counts"].items()},
            at=data.get("at"),
            at_ignored_reason=data.get("at_ignored_reason"),
            fallback_reason=data.get("fallback_reason"),
            notes=tuple(data.get("notes", ())),
            created_at=str(data["created_at"]),
        )


@dataclass
class _Inventory:
    """One database's objects as its information_schema reports them."""

    tables: dict[ObjectKey, str] = field(default_factory=dict)
    views: dict[ObjectKey, str | None] = field(default_factory=dict)
    columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def schemas(self) -> list[str]:
        return sorted({schema for schema, _ in self.tables} | {schema for schema, _ in self.views})


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


class _CloneRun:
    """One clone attempt: its state (time travel honoured or not, what is missing) and its steps."""

    def __init__(self, hook: SnowflakeCloneHook, conn: Any, *, source: str, clone: str, at: datetime | None):
        self.hook = hook
        self.conn = conn
        self.source = source
        self.clone = clone
        self.at = at
        self.created = False
        self.at_rejected = False
        self.at_ignored_reason: str | None = None
        self.fallback_reason: str | None = None
        self.missing: dict[str, str] = {}
        self.notes: list[str] = []
        #: tables whose clone honoured ``at``; their source rows are counted at that moment too.
        self.at_applied: set[ObjectKey] = set()
        #: the source's views, which a re-created view is compared with.
        self.source_views: set[ObjectKey] = set()
        #: views this run created in the clone (a refused reading is dropped again).
        self.created_views: set[ObjectKey] = set()

    # -- steps ---------------------------------------------------------------------------------------------------

    def execute(
        self,
        incident_id: str,
        schemas: list[str] | None,
        tables: list[ObjectKey] | None,
        created_at: datetime,
    ) -> CloneResult:
        scope = schemas
        if tables is not None:
            scope = sorted({schema for schema, _ in tables})
        source = self.inventory(self.source, scope)
        self.source_views = set(source.views)
        expected_tables, expected_views = self._expected(source, tables)

        strategy = "tables"
        if schemas is None and tables is None:
            done, error = self._clone_with_at(
                lambda at: clone_database(self.clone, self.source, at), "the database"
            )
            if done:
                self.created = True
                strategy = "database"
            else:
                self.fallback_reason = f"CREATE DATABASE … CLONE failed: {error}"
                # No IF NOT EXISTS: a database of that name that this run did not make is never reused.
                self._create(create_database(self.clone))
        else:
            self._create(create_database(self.clone))
            for schema in schemas or ():
                done, error = self._clone_with_at(
                    partial(clone_schema, (self.clone, schema), (self.source, schema)),
                    f"schema {schema}",
                )
                if not done:
                    self._note_fallback(f"CREATE SCHEMA … CLONE failed for {schema}: {error}")

        cloned = self.inventory(self.clone, scope)
        if strategy == "database" or schemas:
            self.at_applied.update(
                key for key in cloned.tables if self.at is not None and not self.at_rejected
            )
        absent = [key for key in expected_tables if key not in cloned.tables]
        if absent:
            if strategy == "database" or schemas:
                kind = "CREATE DATABASE … CLONE" if strategy == "database" else "CREATE SCHEMA … CLONE"
                self._note_fallback(
                    f"{kind} left {len(absent)} of {len(expected_tables)} tables out of the clone; "
                    "cloned them table by table"
                )
            strategy = "tables"
            self._clone_tables(absent)

        absent_views = {key: source.views[key] for key in expected_views if key not in cloned.views}
        self._recreate_views(absent_views)
        for view, outcome in self.repoint_views(cloned.views).items():
            if outcome != "repointed":
                self.notes.append(f"{view} still reads {self.source}: {outcome}")

        final = self.inventory(self.clone, scope)
        return self._verify(incident_id, strategy, created_at, source, final, expected_tables, expected_views)

    def _expected(
        self, source: _Inventory, tables: list[ObjectKey] | None
    ) -> tuple[list[ObjectKey], list[ObjectKey]]:
        """The source's tables to clone and views to reproduce; record what will not be cloned and why."""
        if tables is None:
            wanted_tables = dict(source.tables)
            wanted_views = list(source.views)
        else:
            wanted_tables = {key: source.tables[key] for key in tables if key in source.tables}
            wanted_views = [key for key in tables if key in source.views and key not in wanted_tables]
            for key in tables:
                if key not in source.tables and key not in source.views:
                    self.missing[_key_text(key)] = f"not found in {self.source} (or not visible to this role)"
        expected_tables = []
        for key, table_type in sorted(wanted_tables.items()):
            if table_type in _TABLE_TYPES:
                expected_tables.append(key)
            elif table_type in _VIEW_TYPES:
                if key not in source.views:
                    self.missing[_key_text(key)] = f"{table_type.lower()} without a visible definition"
            elif table_type == "TEMPORARY TABLE":
                self.notes.append(f"{_key_text(key)}: {_NOT_CLONED[table_type]}")
            else:
                self.missing[_key_text(key)] = _NOT_CLONED.get(
                    table_type, f"{table_type} objects are not cloned"
                )
        return expected_tables, sorted(wanted_views)

    def _clone_tables(self, keys: Sequence[ObjectKey]) -> None:
        for schema in sorted({schema for schema, _ in keys}):
            self._create(create_schema((self.clone, schema)))
        for key in keys:
            schema, table = key
            done, error = self._clone_with_at(
                partial(clone_table, (self.clone, schema, table), (self.source, schema, table)),
                f"table {schema}.{table}",
            )
            if done and self.at is not None and not self.at_rejected:
                self.at_applied.add(key)
            if not done:
                self.missing[_key_text(key)] = f"CREATE TABLE … CLONE failed: {error}"

    def _recreate_views(self, views: Mapping[ObjectKey, str | None]) -> None:
        """Create views from their source DDL pointed at the clone; views on views may need several passes."""
        pending: dict[ObjectKey, list[tuple[str, str]]] = {}
        for key, definition in sorted(views.items()):
            if not definition:
                self.missing[_key_text(key)] = "its definition is not visible to this role (a secure view?)"
                continue
            try:
                pending[key] = self._candidates(key, definition)
            except ValueError as exc:
                self.missing[_key_text(key)] = f"could not rewrite its DDL for the clone: {exc}"
        if pending:
            for schema in sorted({schema for schema, _ in pending}):
                self._create(create_schema((self.clone, schema)))
        errors: dict[ObjectKey, str] = {}
        while pending:
            progress = False
            for key, candidates in list(pending.items()):
                error = self._create_view(key, candidates)
                if error is not None:
                    errors[key] = error
                    continue
                del pending[key]
                progress = True
            if not progress:
                break
        for key in pending:
            self.missing[_key_text(key)] = f"could not re-create the view in the clone: {errors[key]}"

    def _candidates(self, key: ObjectKey, definition: str) -> list[tuple[str, str]]:
        return view_ddl_candidates(
            definition,
            source_database=self.source,
            target_database=self.clone,
            view_schema=key[0],
            view_name=key[1],
        )

    def _create_view(self, key: ObjectKey, candidates: Sequence[tuple[str, str]]) -> str | None:
        """
        Create the view from the first reading of its text that the warehouse accepts and that matches the source.

        A reading that is refused, or whose rows differ from the source view's, is dropped again.

        :return: None when created, else why every reading was refused.
        """
        from snowflake.connector.errors import DatabaseError

        reasons = []
        for dialect, ddl in candidates:
            try:
                self.hook._execute(self.conn, ddl)
                self.created_views.add(key)
                mismatch = self._rows_differ(key)
            except DatabaseError as exc:
                reasons.append(f"read as {dialect}: {_reason(exc)}")
                continue
            if mismatch is None:
                if dialect != candidates[0][0]:
                    self.notes.append(f"{_key_text(key)}: re-created from its text read as {dialect}")
                return None
            reasons.append(f"read as {dialect}: {mismatch}")
        if key in self.created_views:
            from contextlib import suppress

            with suppress(DatabaseError):
                self.hook._execute(self.conn, drop_view((self.clone, *key)))
            self.created_views.discard(key)
        return "; ".join(reasons) or "no reading of its text"

    def _rows_differ(self, key: ObjectKey) -> str | None:
        """
        Why the re-created view's rows differ from the source view's, or None when they are the same.

        On a clone of an earlier moment the source view shows today's rows, and a view only the clone has has
        nothing to compare with: then only that the view runs is checked.
        """
        if self.at_applied or key not in self.source_views:
            self.hook._query(self.conn, f"select * from {qualified(self.clone, *key)} limit 1", None)  # noqa: S608
            return None
        ((clone_rows, source_rows, only_clone, only_source),) = self.hook._query(
            self.conn, view_rows_check_query((self.clone, *key), (self.source, *key)), None
        )
        if (clone_rows, only_clone, only_source) == (source_rows, 0, 0):
            return None
        return (
            f"it returns {clone_rows} rows where the source view returns {source_rows} "
            f"({only_clone} only in the clone, {only_source} only in the source)"
        )

    def repoint_views(self, views: Mapping[ObjectKey, str | None]) -> dict[str, str]:
        """Re-create each clone view whose DDL reads the source so that it reads the clone."""
        outcomes: dict[str, str] = {}
        for key, definition in sorted(views.items()):
            scan = scan_prod_references(definition or "", self.source)
            if not scan.references:
                continue
            try:
                error = self._create_view(key, self._candidates(key, definition or ""))
            except ValueError as exc:
                error = _reason(exc)
            outcomes[_key_text(key)] = "repointed" if error is None else error
        return outcomes

    # -- verification ----------------------------------------------------------------------------------------------

    def _verify(
        self,
        incident_id: str,
        strategy: str,
        created_at: datetime,
        source: _Inventory,
        clone: _Inventory,
        expected_tables: list[ObjectKey],
        expected_views: list[ObjectKey],
    ) -> CloneResult:
        for key in [*expected_tables, *expected_views]:
            if key not in clone.tables and key not in clone.views:
                self.missing.setdefault(_key_text(key), "not in the clone")
        present_tables = [key for key in expected_tables if key in clone.tables]
        present_views = [key for key in expected_views if key in clone.views]

        for key, differences in self._column_differences(
            source, clone, [*present_tables, *present_views]
        ).items():
            hint = (
                " (the clone is of an earlier moment; the schema may have changed since)"
                if key in self.at_applied
                else ""
            )
            self.missing.setdefault(_key_text(key), f"columns differ from the source: {differences}{hint}")

        from snowflake.connector.errors import ProgrammingError

        counts_compared = True
        clone_counts: dict[ObjectKey, int] = {}
        try:
            clone_counts = self._row_counts(self.clone, present_tables, None)
            source_counts = self._row_counts(
                self.source, [key for key in present_tables if key not in self.at_applied], None
            )
            source_counts.update(
                self._row_counts(
                    self.source, [key for key in present_tables if key in self.at_applied], self.at
                )
            )
        except ProgrammingError as exc:
            counts_compared = False
            self.notes.append(f"row counts were not compared: {_reason(exc)}")
        else:
            for key in present_tables:
                if clone_counts.get(key) != source_counts.get(key):
                    self.missing.setdefault(
                        _key_text(key),
                        f"{clone_counts.get(key)} rows in the clone, {source_counts.get(key)} in the source",
                    )

        prod_references: dict[str, tuple[str, ...]] = {}
        for key, definition in sorted(clone.views.items()):
            scan = scan_prod_references(definition or "", self.source)
            if not scan.parsed:
                self.notes.append(f"{_key_text(key)}: DDL did not parse ({scan.error}); scanned with a regex")
            if scan.references:
                prod_references[_key_text(key)] = scan.references

        missing = tuple(sorted(self.missing.items()))
        return CloneResult(
            clone_database=self.clone,
            source_database=self.source,
            incident_id=incident_id,
            strategy=strategy,
            tables=tuple(_key_text(key) for key in present_tables),
            views=tuple(_key_text(key) for key in present_views),
            missing=missing,
            prod_references=prod_references,
            verified=not missing and not prod_references and counts_compared,
            row_counts={_key_text(key): count for key, count in sorted(clone_counts.items())},
            at=None if self.at is None else self.at.astimezone(timezone.utc).isoformat(),
            at_ignored_reason=self.at_ignored_reason,
            fallback_reason=self.fallback_reason,
            notes=tuple(self.notes),
            created_at=created_at.isoformat(),
        )

    def _column_differences(
        self, source: _Inventory, clone: _Inventory, keys: Sequence[ObjectKey]
    ) -> dict[ObjectKey, str]:
        """Compare each object's columns (names, order, types, nullability) through the drift diff."""
        wanted = {(schema.upper(), name.upper()): (schema, name) for schema, name in keys}

        def snapshot(inventory: _Inventory) -> SchemaSnapshot:
            rows = [
                row
                for row in inventory.columns
                if (str(row["TABLE_SCHEMA"]).upper(), str(row["TABLE_NAME"]).upper()) in wanted
            ]
            return SchemaSnapshot.from_rows(rows, captured_at=datetime.now(timezone.utc).isoformat())

        report = diff_snapshots(snapshot(source), snapshot(clone))
        differences: dict[ObjectKey, list[str]] = {}
        for event in report.events:
            schema, _, name = event.table.partition(".")
            key = wanted.get((schema, name))
            if key is not None:
                differences.setdefault(key, []).append(event.message)
        return {key: " ".join(messages) for key, messages in differences.items()}

    def _row_counts(
        self, database: str, keys: Sequence[ObjectKey], at: datetime | None
    ) -> dict[ObjectKey, int]:
        counts: dict[ObjectKey, int] = {}
        for start in range(0, len(keys), COUNT_CHUNK):
            chunk = list(keys[start : start + COUNT_CHUNK])
            for index, count in self.hook._query(self.conn, row_counts_query(database, chunk, at), None):
                counts[chunk[int(index)]] = int(count)
        return counts

    # -- helpers -----------------------------------------------------------------------------------------------

    def inventory(self, database: str, schemas: Sequence[str] | None) -> _Inventory:
        """Tables, views and columns of ``database`` in three metadata queries, whatever the object count."""
        parameters = tuple(schemas) if schemas is not None else None
        count = None if schemas is None else len(schemas)
        inventory = _Inventory()
        if schemas is not None and not schemas:
            return inventory
        for schema, name, table_type in self.hook._query(
            self.conn, tables_query(database, count), parameters
        ):
            inventory.tables[(str(schema), str(name))] = str(table_type).upper()
        for schema, name, definition in self.hook._query(self.conn, views_query(database, count), parameters):
            key = (str(schema), str(name))
            inventory.views[key] = None if definition is None else str(definition)
            inventory.tables.pop(key, None)
        if inventory.schemas:
            rows = self.hook._query(
                self.conn,
                columns_query(database, len(inventory.schemas)),
                tuple(inventory.schemas),
                as_dict=True,
            )
            inventory.columns = [dict(row) for row in rows]
        return inventory

    def _create(self, sql: str) -> None:
        self.hook._execute(self.conn, sql)
        self.created = True

    def _note_fallback(self, reason: str) -> None:
        self.fallback_reason = reason if self.fallback_reason is None else f"{self.fallback_reason}; {reason}"

    def _clone_with_at(self, build: Callable[[datetime | None], str], what: str) -> tuple[bool, str | None]:
        """
        Run a CLONE statement, with ``AT`` while the warehouse accepts it.

        :return: whether the clone was made, and the error if not.
        """
        from snowflake.connector.errors import ProgrammingError

        if self.at is not None and not self.at_rejected:
            try:
                self._create(build(self.at))
                return True, None
            except ProgrammingError as exc:
                at_error = _reason(exc)
            try:
                self._create(build(None))
            except ProgrammingError as exc:
                return False, _reason(exc)
            self.at_rejected = True
            self.at_ignored_reason = (
                f"the warehouse rejected {at_clause(self.at)} when cloning {what} ({at_error}); "
                "the clone holds the current state instead"
            )
            self.hook.log.warning("%s", self.at_ignored_reason)
            return True, None
        try:
            self._create(build(None))
        except ProgrammingError as exc:
            return False, _reason(exc)
        return True, None
