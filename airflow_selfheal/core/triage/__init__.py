"""
Failure triage: turn the text of a failed dbt node into a stable failure class and a recommended action.

Pure and bounded. The classifier reads only the first and last :data:`WINDOW_CHARS` characters of the error
text (dbt prints the error at the end of a log, the connector at the start), strips terminal escapes and
control characters, and tries an ordered list of named rules, most specific first. Every pattern uses bounded
repetition without nested quantifiers, so a hostile multi-megabyte log costs milliseconds. No Airflow import
and no I/O, so callers anywhere (callbacks, operators, the page builder) can use :func:`classify`.

Both wordings of the same failure are understood: real Snowflake (``000904 (42000): SQL compilation error:
... invalid identifier 'X'``) and the embedded stand-in, whose errors are DuckDB's wording behind a fakesnow
code (``002043 (02000): Binder Error: Referenced column "X" not found``).

The modules, each importable on its own; everything callers use is re-exported here:

* :mod:`~airflow_selfheal.core.triage.model`: :class:`FailureClass`, :class:`Action`, :data:`POLICIES`,
  :class:`RootCause` and :class:`Triage`, the verdict;
* :mod:`~airflow_selfheal.core.triage.rules`: the ordered error-text :data:`RULES`;
* :mod:`~airflow_selfheal.core.triage.text`: bounding and cleaning the text, the names and codes in it, the
  one-line summary;
* :mod:`~airflow_selfheal.core.triage.root_cause`: the drift event that explains a failure;
* :mod:`~airflow_selfheal.core.triage.lineage`: :func:`lineage_relations`, what a failed node reads;
* :mod:`~airflow_selfheal.core.triage.classifier`: :func:`classify`, the entry point.
"""

from __future__ import annotations

from airflow_selfheal.core.triage.classifier import classify
from airflow_selfheal.core.triage.lineage import lineage_relations
from airflow_selfheal.core.triage.model import (
    POLICIES,
    ROOT_CAUSE_KINDS,
    Action,
    FailureClass,
    Policy,
    RootCause,
    Triage,
)
from airflow_selfheal.core.triage.rules import RULES
from airflow_selfheal.core.triage.text import MAX_IDENTIFIERS, SUMMARY_MAX_CHARS, WINDOW_CHARS

__all__ = [
    "MAX_IDENTIFIERS",
    "POLICIES",
    "ROOT_CAUSE_KINDS",
    "RULES",
    "SUMMARY_MAX_CHARS",
    "WINDOW_CHARS",
    "Action",
    "FailureClass",
    "Policy",
    "RootCause",
    "Triage",
    "classify",
    "lineage_relations",
]
