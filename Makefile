# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates (or reuses) the virtualenv and installs what it needs itself.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.stamp-dev
LOCAL_STAMP := $(VENV)/.stamp-local
DOCS_STAMP := $(VENV)/.stamp-docs
BENCH_STAMP := $(VENV)/.stamp-bench

# The `local` extra (offline model) needs llama-cpp-python, which compiles llama.cpp from source:
# about 15 minutes on 2 cores, once per machine. A native build (-march=native, AVX-512, AMX)
# crashed on its first generation on our machines, so it is built as a portable CPU binary.
# The wheel is kept outside the venv, in a folder named after the version and the flags, so that
# `make clean` does not cost another compile and a wheel built with other flags (pip's own cache
# does not key on CMAKE_ARGS) is never picked up.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF
WHEEL_CACHE ?= $(HOME)/.cache/llm-connectors/wheels
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)

.PHONY: demo test test-nightly lint docs bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# Reuses a venv that already has this llama-cpp-python version; otherwise installs the cached
# portable wheel, building it first if this machine has none.
$(LOCAL_STAMP): pyproject.toml | $(BIN)/python
	@if ! $(BIN)/python -c "import importlib.metadata as m, sys; sys.exit(m.version('llama_cpp_python') != '$(LLAMA_CPP_VERSION)')" 2>/dev/null \
	    && ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) for the offline model (portable CPU build;" \
	       "about 15 minutes on 2 cores, once per machine; kept in $(LLAMA_WHEELS))"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel -q --no-cache-dir --no-deps \
	    --no-binary llama-cpp-python -w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'; \
	fi
	mkdir -p $(LLAMA_WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install -q --find-links $(LLAMA_WHEELS) \
	  -e '.[local,server]' 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	$(BIN)/python -c "import llama_cpp"
	touch $@

$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[docs]'
	touch $@

## demo: stream an answer from the first usable provider (the offline model when no key is set),
## then show a fallback and the stats table
demo: $(LOCAL_STAMP)
	$(BIN)/python examples/demo.py

## lint: ruff and mypy --strict
lint: $(DEV_STAMP)
	$(BIN)/ruff check llm_connectors tests examples benchmarks
	$(BIN)/mypy --strict llm_connectors

## test: lint, type-check and the PR test tier, the offline-model tests included (they fail
## rather than skip here); pytest exit code 5, "no tests", fails too
test: lint $(LOCAL_STAMP)
	LLM_CONNECTORS_REQUIRE_LOCAL=1 LLM_CONNECTORS_REQUIRE_REDIS=1 $(BIN)/pytest -m "not nightly"

## test-nightly: the long soak and load tier
test-nightly: $(DEV_STAMP)
	LLM_CONNECTORS_REQUIRE_REDIS=1 $(BIN)/pytest -m nightly

$(BENCH_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	touch $@

## bench: benchmark suite (docs/performance.md): 3 interleaved repeats, every contender, ~6-7 min
bench: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run

## bench-quick: one repeat, our and raw clients only, under a minute
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m benchmarks.run --quick

## docs: build the documentation site into site/ (warnings are errors)
docs: $(DOCS_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis site
