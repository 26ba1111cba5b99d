"""
View re-creation in a clone: views a clone left out, or that still read the source, re-created to read the clone.

A view's text is tried in each reading :func:`~airflow_selfheal.core.clone_sql.view_ddl_candidates` offers; a
reading the warehouse refuses, or whose rows differ from the source view's, is dropped again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_selfheal.core.clone_sql import (
    create_schema,
    drop_view,
    scan_prod_references,
    view_ddl_candidates,
    view_rows_check_query,
)
from airflow_selfheal.core.identifiers import qualified
from airflow_selfheal.hooks.snowflake_clone.state import ObjectKey, _CloneState, _key_text, _reason

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class _ViewSteps(_CloneState):
    """The view steps of a clone attempt."""

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
