# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates (or reuses) the virtualenv and installs what it needs itself.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEV_STAMP := $(VENV)/.stamp-dev
LOCAL_STAMP := $(VENV)/.stamp-local
DOCS_STAMP := $(VENV)/.stamp-docs
BENCH_STAMP := $(VENV)/.stamp-bench
SERVER_STAMP := $(VENV)/.stamp-server

# bash, for PIPESTATUS: the llama.cpp build's output goes through a progress filter.
SHELL := bash

# The `local` extra (offline model) needs llama-cpp-python, which compiles llama.cpp from source:
# about 3-4 minutes on 2 cores (measured: 194 s; 253 s before the multimodal library was left
# out), once per machine. Only what the connector loads is built: LLAVA_BUILD=OFF skips the
# multimodal library (mtmd), which llama_cpp imports only for vision chat handlers. A native
# build (-march=native, AVX-512, AMX) crashed on its first generation on our machines, so it is a
# portable CPU binary. The wheel is kept outside the venv, in a folder named after the version
# and the flags, so `make clean` costs no compile and a wheel built with other flags (pip's own
# cache does not key on CMAKE_ARGS) is never picked up.
LLAMA_CPP_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DLLAVA_BUILD=OFF
LLAMA_BUILD_SECONDS := 200
WHEEL_CACHE ?= $(HOME)/.cache/llm-connectors/wheels
LLAMA_WHEELS := $(WHEEL_CACHE)/llama-cpp-python-$(LLAMA_CPP_VERSION)-$(shell printf '%s' '$(LLAMA_CMAKE_ARGS)' | cksum | cut -d' ' -f1)
LLAMA_WHEEL_STAMP := $(LLAMA_WHEELS)/.built

.PHONY: demo test test-nightly lint clean-install docs bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# The portable llama-cpp-python wheel, built once per machine with a progress line now and then.
$(LLAMA_WHEEL_STAMP): | $(BIN)/python
	@mkdir -p $(LLAMA_WHEELS)
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip wheel -v --no-cache-dir --no-deps \
	    --no-binary llama-cpp-python -w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_CPP_VERSION)' 2>&1 \
	  | $(BIN)/python scripts/build_progress.py --label "llama.cpp build" --expect $(LLAMA_BUILD_SECONDS) \
	      --log $(LLAMA_WHEELS)/build.log; \
	  status=$${PIPESTATUS[0]}; \
	  if [ $$status -ne 0 ]; then tail -n 40 $(LLAMA_WHEELS)/build.log; exit $$status; fi; \
	fi
	touch $@

# The `local` extra from the cached wheel (no compile), then the default model (98 MB, once,
# into ~/.cache/llm-connectors/models; `fetch-model` returns at once when it is there).
$(LOCAL_STAMP): pyproject.toml $(LLAMA_WHEEL_STAMP) | $(BIN)/python
	$(BIN)/python -m pip install -q --find-links $(LLAMA_WHEELS) -e '.[local]' 'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	$(BIN)/python -c "import llama_cpp"
	$(BIN)/llm-connectors fetch-model
	touch $@

# llama.cpp's OpenAI-compatible server, for the tests and the example that use a real one.
$(SERVER_STAMP): pyproject.toml $(LOCAL_STAMP)
	$(BIN)/python -m pip install -q --find-links $(LLAMA_WHEELS) -e '.[server]' \
	  'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
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
	$(BIN)/ruff check llm_connectors tests examples benchmarks scripts
	$(BIN)/mypy --strict llm_connectors

## test: lint, type-check, the PR test tier (offline-model and Redis tests included: they fail
## rather than skip here; pytest exit code 5, "no tests", fails too), then the clean install
test: lint $(SERVER_STAMP)
	LLM_CONNECTORS_REQUIRE_LOCAL=1 LLM_CONNECTORS_REQUIRE_REDIS=1 $(BIN)/pytest -m "not nightly"
	$(MAKE) clean-install

## clean-install: build sdist and wheel, install the wheel into clean venvs (no extras, lowest
## and newest dependency versions, each extra alone) and use it from outside the checkout
clean-install: $(DEV_STAMP) $(LLAMA_WHEEL_STAMP)
	$(BIN)/python scripts/clean_install.py --wheels $(LLAMA_WHEELS)

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
