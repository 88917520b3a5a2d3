# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates (or reuses) the virtualenv and installs what it needs itself.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.stamp-dev

.PHONY: demo test test-nightly lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

## demo: run the main job (examples/quickstart.py against the configured provider)
demo: $(DEV_STAMP)
	$(BIN)/python examples/quickstart.py

## lint: ruff and mypy --strict
lint: $(DEV_STAMP)
	$(BIN)/ruff check llm_connectors tests examples
	$(BIN)/mypy --strict llm_connectors

## test: lint, type-check and the PR test tier (pytest exit code 5, "no tests", fails too)
test: lint
	$(BIN)/pytest -m "not nightly"

## test-nightly: the long soak and load tier
test-nightly: $(DEV_STAMP)
	$(BIN)/pytest -m nightly

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
