"""
dbt for the repair loop: validate a fix in a clone, then re-run production once it is promoted.

One concept per module:

* :mod:`~airflow_selfheal.hooks.dbt.validation` — :class:`DbtValidationHook`, the guarded build in a clone;
* :mod:`~airflow_selfheal.hooks.dbt.production` — :class:`DbtProductionHook`, ``dbt build`` and ``dbt parse`` in
  production with a profile of its own;
* :mod:`~airflow_selfheal.hooks.dbt.runner` — the one child-process runner both use (process group, timeout,
  redaction, ``run_results.json``);
* :mod:`~airflow_selfheal.hooks.dbt.profiles` — the validation and production profiles and their checks;
* :mod:`~airflow_selfheal.hooks.dbt.isolation` — sources pointed at the clone, the parsed project checked;
* :mod:`~airflow_selfheal.hooks.dbt.results` — :class:`NodeStatus`, :class:`ValidationResult`,
  :func:`parse_run_results`;
* :mod:`~airflow_selfheal.hooks.dbt.child` — the child process, ``python -m airflow_selfheal.hooks.dbt``.

The names below are importable from this package as before the split. They load on first use: Python imports
this ``__init__`` before the child's ``__main__``, and the child must start without Airflow and without anything
it does not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_selfheal.hooks.dbt.child import _scrub_dbt_flag_environment as _scrub_dbt_flag_environment
    from airflow_selfheal.hooks.dbt.isolation import (
        WRITING_TYPES,
        isolation_problems,
        rewrite_source_databases,
    )
    from airflow_selfheal.hooks.dbt.production import (
        DbtProductionHook,
        DbtRunError,
        ProductionBuildResult,
    )
    from airflow_selfheal.hooks.dbt.profiles import (
        PASSWORD_ENV,
        PASSWORD_REFERENCE,
        PROD_PROFILE_NAME,
        PROD_TARGET_NAME,
        PROFILE_NAME,
        TARGET_NAME,
        ProductionRefused,
        ValidationRefused,
        check_production_profile,
        check_production_target,
        check_profile,
        check_target,
        production_profile,
        validation_profile,
    )
    from airflow_selfheal.hooks.dbt.results import (
        FAILED_STATUSES,
        MESSAGE_LIMIT,
        PASSED_STATUSES,
        NodeStatus,
        ValidationResult,
        parse_run_results,
    )
    from airflow_selfheal.hooks.dbt.runner import (
        DBT_COMMANDS,
        EXCERPT_LIMIT,
        REQUEST_FILE,
        ChildOutcome,
        dbt_environment,
        dbt_log_excerpt,
        read_run_results,
        run_dbt_child,
        run_in_process_group,
    )
    from airflow_selfheal.hooks.dbt.validation import (
        DEFAULT_TIMEOUT,
        GUARD_FILE,
        LOG_EXCERPT_LIMIT,
        LOG_FILE,
        RESULT_FILE,
        RUN_RESULTS_FILE,
        DbtValidationHook,
    )

_MODULES: dict[str, tuple[str, ...]] = {
    "child": ("_scrub_dbt_flag_environment",),
    "isolation": ("WRITING_TYPES", "isolation_problems", "rewrite_source_databases"),
    "production": ("DbtProductionHook", "DbtRunError", "ProductionBuildResult"),
    "profiles": (
        "PASSWORD_ENV",
        "PASSWORD_REFERENCE",
        "PROD_PROFILE_NAME",
        "PROD_TARGET_NAME",
        "PROFILE_NAME",
        "TARGET_NAME",
        "ProductionRefused",
        "ValidationRefused",
        "check_production_profile",
        "check_production_target",
        "check_profile",
        "check_target",
        "production_profile",
        "validation_profile",
    ),
    "results": (
        "FAILED_STATUSES",
        "MESSAGE_LIMIT",
        "PASSED_STATUSES",
        "NodeStatus",
        "ValidationResult",
        "parse_run_results",
    ),
    "runner": (
        "DBT_COMMANDS",
        "EXCERPT_LIMIT",
        "REQUEST_FILE",
        "ChildOutcome",
        "dbt_environment",
        "dbt_log_excerpt",
        "read_run_results",
        "run_dbt_child",
        "run_in_process_group",
    ),
    "validation": (
        "DEFAULT_TIMEOUT",
        "GUARD_FILE",
        "LOG_EXCERPT_LIMIT",
        "LOG_FILE",
        "RESULT_FILE",
        "RUN_RESULTS_FILE",
        "DbtValidationHook",
    ),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "DBT_COMMANDS",
    "DEFAULT_TIMEOUT",
    "EXCERPT_LIMIT",
    "FAILED_STATUSES",
    "GUARD_FILE",
    "LOG_EXCERPT_LIMIT",
    "LOG_FILE",
    "MESSAGE_LIMIT",
    "PASSED_STATUSES",
    "PASSWORD_ENV",
    "PASSWORD_REFERENCE",
    "PROD_PROFILE_NAME",
    "PROD_TARGET_NAME",
    "PROFILE_NAME",
    "REQUEST_FILE",
    "RESULT_FILE",
    "RUN_RESULTS_FILE",
    "TARGET_NAME",
    "WRITING_TYPES",
    "ChildOutcome",
    "DbtProductionHook",
    "DbtRunError",
    "DbtValidationHook",
    "NodeStatus",
    "ProductionBuildResult",
    "ProductionRefused",
    "ValidationRefused",
    "ValidationResult",
    "check_production_profile",
    "check_production_target",
    "check_profile",
    "check_target",
    "dbt_environment",
    "dbt_log_excerpt",
    "isolation_problems",
    "parse_run_results",
    "production_profile",
    "read_run_results",
    "rewrite_source_databases",
    "run_dbt_child",
    "run_in_process_group",
    "validation_profile",
]


def __getattr__(name: str) -> Any:
    """Load an exported name from its module on first use (PEP 562)."""
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names and the exported ones not loaded yet."""
    return sorted({*globals(), *_HOME})
