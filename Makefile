# The two commands: `make demo` (the whole lakehouse on this machine) and `make test`.
# First use of any target installs everything into .venv (see scripts/bootstrap.sh).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test ui bench install lock reset clean help

help:
	@echo "make demo   - set up on first use, run every DAG once through a local Airflow, print a summary"
	@echo "make test   - set up on first use, run the test suite"
	@echo "make ui     - Airflow UI (airflow standalone) on the project's DAGs and settings"
	@echo "make bench  - run the benchmarks, results in bench/results/"
	@echo "make reset  - delete all local state (.local/: Airflow DB, Delta tables, alerts)"
	@echo "make lock   - re-resolve requirements-lock.txt from requirements-dev.txt"

$(VENV)/.installed: requirements-lock.txt scripts/bootstrap.sh
	@bash scripts/bootstrap.sh

install: $(VENV)/.installed

demo: install
	@$(PY) scripts/local_airflow.py demo

ui: install
	@$(PY) scripts/local_airflow.py ui

test: install
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	@$(PY) bench/run.py

lock: install
	@$(VENV)/bin/uv pip compile requirements-dev.txt --python-version 3.11 --no-header --quiet -o requirements-lock.txt

reset:
	rm -rf .local

clean: reset
	rm -rf $(VENV) .pytest_cache
