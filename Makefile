# Every target sets up what it needs first: a virtualenv in .venv with the
# package and its extras installed from this repository's own files.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SETUP_STAMP := $(VENV)/.mlsecops-setup

.PHONY: setup demo lab test lint typecheck jest pytest bench browser-deps clean

setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lab]'
	touch $@

## demo: run the example notebook headlessly and print what the guardrails caught
demo: setup
	$(BIN)/python examples/run_demo.py

## lab: start JupyterLab on the example notebook (http://127.0.0.1:8888)
lab: setup
	cd examples && ../$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 guardrails_tour.ipynb

## test: lint, type-check and run the whole test suite (Python and the panel's jest tests)
test: setup lint typecheck jest pytest

jest: setup
	cd labextension && ../$(BIN)/jlpm test

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The panel's browser test drives the system Chromium (never a downloaded one).
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

pytest: setup browser-deps
	$(BIN)/pytest

## bench: speed and detection benchmarks against the named baselines (tests/benchmarks/README.md)
bench: setup
	$(BIN)/python -m pip install --quiet -e '.[test,lab,bench]'
	$(BIN)/python tests/benchmarks/bench_pickle_scanners.py
	$(BIN)/python tests/benchmarks/bench_pii.py
	$(BIN)/python tests/benchmarks/bench_datasets.py
	$(BIN)/python tests/benchmarks/bench_spark.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
