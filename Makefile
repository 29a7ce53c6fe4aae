# Retoone: two commands do all the set-up.
#   make run   create .venv, install, start the server with embedded defaults, print the URL
#   make test  create .venv, install (apt packages too), run ruff, mypy and pytest

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test lint typecheck pytest perf system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), \
		f"Retoone needs Python 3.11, found {sys.version.split()[0]} at {sys.executable}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,perf]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/retoone serve $(ARGS)

system-deps:
	bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest $(ARGS)

test: $(STAMP) system-deps lint typecheck pytest

perf: $(STAMP)
	$(BIN)/python -m perf.auth --json perf/results/auth.json
	$(BIN)/python -m perf.dsp --json perf/results/dsp.json
	$(BIN)/python -m perf.engine --json perf/results/engine.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis *.egg-info
