"""RepairConfig: bad values fail when the DAG file is parsed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_selfheal.repair import RepairConfig


def config(**overrides: Any) -> RepairConfig:
    values: dict[str, Any] = {"project_dir": "/p", "snowflake_conn_id": "wh", "prod_database": "DEMO"}
    return RepairConfig(**{**values, **overrides})


class TestRepairConfig:
    def test_defaults(self) -> None:
        cfg = config()
        assert (cfg.deploy_branch, cfg.promote_mode, cfg.max_attempts) == ("main", "merge", 2)
        assert cfg.approval_timeout == timedelta(hours=4)
        assert str(cfg.manifest) == "/p/target/manifest.json"

    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"max_attempts": 0}, id="attempts"),
            pytest.param({"promote_mode": "force"}, id="mode"),
            pytest.param({"prod_database": ""}, id="prod"),
            pytest.param({"approval_timeout": timedelta(0)}, id="timeout"),
        ],
    )
    def test_bad_values_fail_at_parse_time(self, overrides: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match=next(iter(overrides)).split("_")[0]):
            config(**overrides)
