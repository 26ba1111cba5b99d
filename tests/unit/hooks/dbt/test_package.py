"""``airflow_selfheal.hooks.dbt`` keeps every name it had before it became a package, loaded on first use."""

from __future__ import annotations

import importlib

import pytest

import airflow_selfheal.hooks.dbt as package

# Imported from airflow_selfheal.hooks.dbt by the package, its tests and the repair steps before the split.
NAMES_IN_USE = [
    "DbtValidationHook",
    "NodeStatus",
    "PASSWORD_ENV",
    "PROFILE_NAME",
    "TARGET_NAME",
    "ValidationRefused",
    "ValidationResult",
    "check_profile",
    "check_target",
    "isolation_problems",
    "parse_run_results",
    "rewrite_source_databases",
    "validation_profile",
    "_scrub_dbt_flag_environment",
]


@pytest.mark.parametrize("name", sorted({*package.__all__, *NAMES_IN_USE}))
def test_every_name_resolves_to_its_module(name: str) -> None:
    value = getattr(package, name)
    homes = [
        module
        for module in ("child", "isolation", "production", "profiles", "results", "runner", "validation")
        if getattr(importlib.import_module(f"{package.__name__}.{module}"), name, None) is value
    ]
    assert homes, f"{name} is not the object its module defines"
    assert name in dir(package)


def test_unknown_names_are_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = package.nope  # type: ignore[attr-defined]
    assert not hasattr(package, "RAW_OUTPUT")
