# The two commands: `make demo` (the whole lakehouse on this machine) and `make test`.
# First use of any target installs everything into .venv (see scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test test-slow ui bench install lock reset clean help dbt-docs canary astro-check

help:
	@echo "make demo   - set up on first use, run every DAG once through a local Airflow, print a summary"
	@echo "make test   - set up on first use, run the test suite"
	@echo "make ui     - Airflow UI (airflow standalone) on the project's DAGs and settings"
	@echo "make canary - alert self-test: alert_canary misses its deadline and fails a task; checks every alert arrived"
	@echo "make bench  - run the benchmarks (BENCH=\"scd2 kafka\" for some), results and latest.md in bench/results/"
	@echo "make test-slow - the slow, exhaustive tests (marked slow)"
	@echo "make astro-check - astro dev start without Docker: the project's Astro containers emulated, pipeline run, restart, rerun"
	@echo "make reset  - delete all local state (.local/: Airflow DB, Delta tables, alerts)"
	@echo "make lock   - re-resolve requirements-lock.txt from requirements-dev.txt"
	@echo "make dbt-docs - dbt docs for include/dbt (local target) in include/dbt/target"

$(VENV)/.installed: requirements-lock.txt scripts/bootstrap.sh
	@bash scripts/bootstrap.sh

# Cosmos renders the dbt DAG from this manifest (LoadMode.DBT_MANIFEST): built ahead of time.
DBT_MANIFEST := include/dbt/target/manifest.json
DBT_SOURCES := $(shell find include/dbt -path include/dbt/target -prune -o \( -name '*.sql' -o -name '*.yml' \) -print 2>/dev/null)

$(DBT_MANIFEST): $(VENV)/.installed $(DBT_SOURCES) include/lakehouse/transform/dbt_project.py
	@$(PY) -m include.lakehouse.transform.dbt_project >/dev/null && echo "dbt manifest: $(DBT_MANIFEST)"

# a migrated empty metadata DB kept beside the packages: a fresh `make demo` copies it (scripts/local_airflow/settings.py)
$(VENV)/.db-template: $(VENV)/.installed
	@$(PY) -m scripts.local_airflow db-template && touch $@

install: $(VENV)/.installed $(DBT_MANIFEST) $(VENV)/.db-template

demo: install
	@$(PY) -m scripts.local_airflow demo

canary: install
	@$(PY) -m scripts.local_airflow canary

ui: install
	@$(PY) -m scripts.local_airflow ui

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

# exhaustive and slow tests (marked `slow`): CI runs them after `make test` and `make astro-check`
test-slow: install
	@$(PY) -m pytest -m slow $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]  # 5: none marked yet

# `astro dev start` proven without Docker (tests/astro/emulation.py); `make test` runs the fast
# Astro checks (tests/astro/test_*.py without the `astro` mark: fresh-clone parse, topics, volumes, image)
astro-check: $(VENV)/.installed
	@$(PY) -m pytest -m astro tests/astro $(PYTEST_ARGS)

dbt-docs: install
	@$(PY) -c "from include.lakehouse.transform.dbt_project import run_dbt; import sys; sys.exit(0 if run_dbt(['docs', 'generate']).success else 1)"

bench: install
	@$(PY) -m bench.run $(BENCH)

lock: install
	@$(VENV)/bin/uv pip compile requirements-dev.txt --python-version 3.11 --no-header --quiet -o requirements-lock.txt

reset:
	rm -rf .local

clean: reset
	rm -rf $(VENV) .pytest_cache
