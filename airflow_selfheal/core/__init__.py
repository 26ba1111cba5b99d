"""Pure decision logic: no Airflow, no I/O. Everything here is unit-testable in milliseconds."""

from __future__ import annotations
