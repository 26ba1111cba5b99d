"""
The deterministic rules, one module each, in priority order from ``column_rename`` to ``accepted_values``.

Each rule takes the fix context, the triage and the failing rows, and returns a ``_Draft`` or raises
``_Escalate`` when it is not certain. Rules use the engines (Jinja masking, SQL scopes and edits, YAML edits,
guard tests) and never each other; the two data-test rules share :mod:`.failed_test`. Which rule a failure gets
is decided in :mod:`airflow_selfheal.core.fixes.propose`.
"""

from __future__ import annotations
