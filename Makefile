# Two commands for a newcomer: `make demo` and `make test`. Each bootstraps the locked virtualenv first.
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export SCARF_ANALYTICS := false
export SCARF_NO_ANALYTICS := true
export DO_NOT_TRACK := 1

.PHONY: venv lock demo test pytest unit lint format manifest bench clean debs up down mttr

venv: $(VENV)/.synced

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed for the dev stack (fakesnow); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

# requirements.lock pins every package with its hashes (exported from uv's resolution by `make lock`).
$(VENV)/.synced: $(UV) requirements.lock pyproject.toml
	$(UV) venv --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --python $(VENV)/bin/python --require-hashes requirements.lock
	$(UV) pip install --python $(VENV)/bin/python --no-deps --editable .
	@touch $@

# Re-resolve after changing dependencies in pyproject.toml; commit requirements.lock.
lock: $(UV)
	$(UV) lock --python $(PYTHON)
	$(UV) export --frozen --all-extras --no-emit-project --format requirements-txt -o requirements.lock

demo: venv
	$(PY) -m dev.demo

test: lint pytest

# Two workers, one test module each at a time (module fixtures stay in one process; each worker has its own
# Airflow home and embedded warehouse), the longest modules first (tests/conftest.py). PYTEST_WORKERS=0 runs
# everything in this process.
PYTEST_WORKERS ?= 2
pytest: venv debs
	$(PY) -m pytest $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder) --durations=15

unit: venv
	$(PY) -m pytest -m "not integration"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Debian packages for the local deployment and the browser tests: PostgreSQL, Redis, Chromium and its driver.
debs:
	@bash dev/debs.sh

# The optional third command: a real Airflow deployment on 127.0.0.1 (see README, "A real deployment").
up: venv debs
	$(PY) -m dev.stack up

down: venv
	$(PY) -m dev.stack down

# MTTR under the real scheduler against a bare `dbt build`, on a stack of its own (no other stack may be up).
mttr: venv debs
	$(PY) -m dev.stack up
	$(PY) -m dev.stack mttr --report .stack/mttr.json; rc=$$?; $(PY) -m dev.stack down; exit $$rc

manifest: venv
	cd dev/demo_project && ../../$(VENV)/bin/dbt parse --profiles-dir . --quiet

bench: venv
	$(PY) -m dev.bench

clean:
	-$(PY) -m dev.warehouse stop
	-$(PY) -m dev.stack down
	rm -rf .demo .selfheal .stack dev/demo_project/target dev/demo_project/logs .pytest_cache .mypy_cache .ruff_cache
