"""``python -m airflow_selfheal.hooks.dbt <request.json>``: the dbt child (:mod:`.child`), without Airflow."""

from __future__ import annotations

import sys

from airflow_selfheal.hooks.dbt.child import main

sys.exit(main(sys.argv[1:]))
