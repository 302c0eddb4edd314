# Two commands matter: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test lint bench airflow-e2e clean-venv

# Core install: the pipeline and its CLI. A fresh venv's pip (23.x) silently drops lxml_html_clean,
# so pip is upgraded first.
$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install --compile -e .
	touch $@

# Test install: adds Airflow and the test tools.
$(VENV)/.full: $(VENV)/.core
	$(PIP) install --compile -e '.[airflow,dev]'
	touch $@

demo: $(VENV)/.core
	$(VENV)/bin/newsingest demo --warehouse $${NEWSINGEST_WAREHOUSE:-warehouse}

test: $(VENV)/.full
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.full
	$(VENV)/bin/ruff check pipeline dags tests bench

bench: $(VENV)/.full
	$(PY) bench/run_all.py

airflow-e2e: $(VENV)/.full
	$(PY) -m pytest -m airflow tests/test_airflow_scheduler.py $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
