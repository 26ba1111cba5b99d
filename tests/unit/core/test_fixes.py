"""
Kept only for ``tests/unit/test_validation_selector.py``, which imports the demo-project builders from here.

It holds no tests: the tests of the fix rules are under ``tests/unit/core/fixes/``, and the builders live in
``tests/unit/core/fixes/demo_project.py``. Delete this module once nothing imports it.
"""

from __future__ import annotations

from tests.unit.core.fixes.demo_project import (
    INCIDENT_ID,
    RENAME,
    SOURCES_YML,
    STAGING_YML,
    STG_ORDERS,
    STG_ORDERS_INCIDENT,
    demo_files,
    incident,
    manifest_slice,
    node_id_of_test,
    plan_of,
    propose,
)

__all__ = [
    "INCIDENT_ID",
    "RENAME",
    "SOURCES_YML",
    "STAGING_YML",
    "STG_ORDERS",
    "STG_ORDERS_INCIDENT",
    "demo_files",
    "incident",
    "manifest_slice",
    "node_id_of_test",
    "plan_of",
    "propose",
]
