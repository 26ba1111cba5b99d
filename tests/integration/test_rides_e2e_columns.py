"""The second project's scenarios that change a column of an existing table, through the real pipeline and repair.

A renamed column, a column whose type changed, an unused and a used dropped column (and, with
``SELFHEAL_E2E_SCENARIOS=all``, an added column that must not open an incident). The other scenarios run in
``test_rides_e2e_tables_and_data.py``, so ``make test`` runs both halves on its two workers. What a scenario
checks, and the ``SELFHEAL_E2E_PROJECT``, ``SELFHEAL_E2E_SCENARIOS`` and ``SELFHEAL_E2E_REPORT`` switches, are
described in :mod:`tests.support.rides_e2e`; the stack is the ``e2e_stack`` fixture of the conftest.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.rides_e2e import COLUMNS, check_scenario, scenario_names

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("name", scenario_names(COLUMNS))
def test_scenario_ends_as_expected(e2e_stack: dict[str, Any], name: str) -> None:
    check_scenario(e2e_stack, name)
