# Two commands matter: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test lint bench bench-memory airflow-e2e clean-venv chromium docs report-screenshot

# Core install: the pipeline and its CLI. A fresh venv's pip (23.x) silently drops lxml_html_clean,
# so pip is upgraded first.
$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install --compile -e .
	# an editable install compiles none of our own modules, and PYTHONDONTWRITEBYTECODE (set on some machines)
	# would have every process (each pool worker too) compile them again: compiled once here, read from then on
	$(PY) -m compileall -q pipeline dags
	touch $@

# Test install: adds Airflow and the test tools.
$(VENV)/.full: $(VENV)/.core
	$(PIP) install --compile -e '.[airflow,dev]'
	touch $@

demo: $(VENV)/.core
	$(VENV)/bin/newsingest demo --warehouse $${NEWSINGEST_WAREHOUSE:-warehouse}

test: $(VENV)/.full chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# Headless Chromium renders the report in tests/test_report_demo.py (which skips, saying so, without it).
# Best effort: installed with apt-get when missing and we are root; never fails the build.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    { echo "installing chromium for the report test (apt-get)"; \
	      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	      echo "chromium could not be installed; the report rendering test will skip"; }; } || true

# Regenerate the config reference in docs/operator-guide.md from pipeline/settings.py.
docs: $(VENV)/.core
	$(PY) docs/gen_config_reference.py

# Re-take docs/img/report-demo.png: the demo warehouse's report rendered by headless Chromium.
report-screenshot: $(VENV)/.full chromium
	NEWSINGEST_WRITE_ARTIFACTS=1 $(PY) -m pytest -q tests/test_report_demo.py -k chromium

lint: $(VENV)/.full
	$(VENV)/bin/ruff check pipeline dags tests bench docs

bench: $(VENV)/.full
	$(PY) bench/run_all.py

# Peak RSS of `newsingest run --all` at two sizes alone, as `make bench` runs it (2,000 and 100,000 pages:
# the issue's 100k-article run, about 4 GB of generated web on disk); PAGES=2000,20000 for a shorter one.
PAGES ?= 2000,100000
bench-memory: $(VENV)/.full
	$(PY) bench/memory.py --pages $(PAGES)

airflow-e2e: $(VENV)/.full
	$(PY) -m pytest -m airflow tests/test_airflow_scheduler.py $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
