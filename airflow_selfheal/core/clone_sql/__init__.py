"""
Zero-copy clone SQL: CLONE/DROP/SWAP statements, clone names, and the view references a clone still makes to prod.

Every statement is built from strictly quoted identifiers (:func:`~airflow_selfheal.core.identifiers.quote_identifier`)
in Snowflake's documented spelling, so the text is exact and does not move with the sqlglot version. View DDL, which
comes from the warehouse and can be any query, is parsed with sqlglot (imported lazily; DAG parsing stays fast).

Object names are accepted in two forms:

* a string as it would be written in SQL, split on dots outside double quotes and resolved per part as Snowflake
  does (``demo.raw.orders`` is ``DEMO.RAW.ORDERS``; ``"Mixed".raw`` keeps ``Mixed``); anything that is not a valid
  identifier raises :class:`ValueError`, so SQL cannot be smuggled in through a name;
* a sequence of stored-form parts, used as they are (``("DEMO", "RAW", "ORDERS")``).

Clone names (:func:`clone_name`) carry the source database, the incident and the creation time, so a TTL sweep can
find orphaned clones and know their age from the name alone (``SHOW DATABASES`` on the embedded stand-in reports
every creation time as 1970):

.. code-block:: python

    name = clone_name("DEMO", "inc-0123abcd", created_at=failed_at)  # DEMO__SELFHEAL_INC_0123ABCD__20260101T100000Z
    sql = clone_database(name, "DEMO", at=failed_at)
    # CREATE DATABASE "DEMO__SELFHEAL_..." CLONE "DEMO" AT(TIMESTAMP => '2026-01-01 10:00:00.000000+00:00'::timestamp_tz)

The modules, each importable on its own; everything callers use is re-exported here:

* :mod:`~airflow_selfheal.core.clone_sql.names`: :data:`ObjectName` parts, :func:`clone_name` and
  :func:`parse_clone_name`;
* :mod:`~airflow_selfheal.core.clone_sql.statements`: the CLONE/CREATE/DROP/SWAP statements and the metadata
  queries;
* :mod:`~airflow_selfheal.core.clone_sql.views`: view DDL, scanned for prod references and retargeted at a clone.
"""

from __future__ import annotations

from airflow_selfheal.core.clone_sql.names import (
    CLONE_MARKER,
    MAX_IDENTIFIER_LENGTH,
    MAX_PREFIX_LENGTH,
    CloneName,
    ObjectName,
    clone_name,
    name_parts,
    parse_clone_name,
    split_qualified,
)
from airflow_selfheal.core.clone_sql.statements import (
    at_clause,
    clone_database,
    clone_schema,
    clone_table,
    create_database,
    create_schema,
    drop_database,
    drop_schema,
    drop_table,
    drop_view,
    row_counts_query,
    schemas_query,
    show_clone_databases,
    swap_tables,
    tables_query,
    view_rows_check_query,
    views_query,
)
from airflow_selfheal.core.clone_sql.views import (
    VIEW_TEXT_DIALECTS,
    ReferenceScan,
    find_prod_references,
    retarget_view_ddl,
    scan_prod_references,
    view_ddl_candidates,
)

__all__ = [
    "CLONE_MARKER",
    "MAX_IDENTIFIER_LENGTH",
    "MAX_PREFIX_LENGTH",
    "VIEW_TEXT_DIALECTS",
    "CloneName",
    "ObjectName",
    "ReferenceScan",
    "at_clause",
    "clone_database",
    "clone_name",
    "clone_schema",
    "clone_table",
    "create_database",
    "create_schema",
    "drop_database",
    "drop_schema",
    "drop_table",
    "drop_view",
    "find_prod_references",
    "name_parts",
    "parse_clone_name",
    "retarget_view_ddl",
    "row_counts_query",
    "scan_prod_references",
    "schemas_query",
    "show_clone_databases",
    "split_qualified",
    "swap_tables",
    "tables_query",
    "view_ddl_candidates",
    "view_rows_check_query",
    "views_query",
]
