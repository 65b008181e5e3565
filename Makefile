# Two commands on a fresh machine: `make run` (the service on embedded defaults) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint bench-deps demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed-run

## Start API + one worker on http://127.0.0.1:8000 (SQLite, local objects, filesystem broker in ./var);
## on a fresh database, also issue the first admin key and run the demo once against it
run: $(VENV)/.installed-run
	$(BIN)/pairscope serve --demo

## Run the demo again against the running service (another network beside the first)
demo: $(VENV)/.installed-run
	$(BIN)/pairscope demo

## Lint and run the whole test suite against the real PostgreSQL, Redis, moto S3 and workers
test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-deps: $(VENV)/.installed-bench

clean:
	rm -rf $(VENV) var demo-output
