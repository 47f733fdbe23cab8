# Two commands for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ROWS ?= 200000

.PHONY: demo test check bench install clean

# The demo needs only the core package; tests need every extra (Spark, web, drivers ...).
$(VENV)/.core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.core

install: $(VENV)/.dev

## Set up, create the example project in ./demo and run it end to end on embedded DuckDB.
demo: $(VENV)/.core
	rm -rf demo
	$(BIN)/headwater init demo --rows $(ROWS)
	$(BIN)/headwater run --project demo
	$(BIN)/headwater show device_health_daily --project demo --limit 5

## Set up and run the whole test suite.
test: install
	$(BIN)/pytest -q

## Lint and type-check.
check: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf $(VENV) demo bench/.work

.PHONY: reliability
## The long forms of the reliability suite: 50 kill -9 per project, every fault, the whole
## bad-input corpus, 3000 fuzzed projects, the secrets scan; writes the figures into
## docs/RELIABILITY.md (the short forms run in `make test`).
reliability: install
	$(BIN)/python tests/reliability/report.py --write docs/RELIABILITY.md --json bench/.work/reliability.json
