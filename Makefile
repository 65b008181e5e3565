# Two commands on a fresh machine: `make run` (the service on embedded defaults) and `make test`.
# Both install the worker extra (TensorFlow): the service here runs its own worker.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint fuzz browser bench-deps demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[worker]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[worker,dev]"
	touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[worker,dev,bench]"
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed-run

## Start API + one worker on http://127.0.0.1:8000 (SQLite, local objects, filesystem broker in ./var);
## on a fresh database, also issue the first admin key and run the demo once against it
run: $(VENV)/.installed-run
	$(BIN)/pairscope serve --demo

## Run the demo again against the running service (another network beside the first)
demo: $(VENV)/.installed-run
	$(BIN)/pairscope demo

## Lint and run the whole test suite against the real PostgreSQL, Redis, moto S3, workers and a
## real Chromium (Debian's package, installed here when missing; the web app's end-to-end tests)
test: $(VENV)/.installed-dev browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

## Fuzz long: damaged TIFF / OME-TIFF uploads (UPLOAD_FUZZ_EXAMPLES, default 2000 per database)
## and schemathesis over every operation (SCHEMATHESIS_EXAMPLES, default 100); prints the counts
fuzz: $(VENV)/.installed-dev
	UPLOAD_FUZZ_EXAMPLES=$${UPLOAD_FUZZ_EXAMPLES:-2000} $(BIN)/pytest -q -s \
		tests/api/test_upload_fuzz.py
	SCHEMATHESIS_EXAMPLES=$${SCHEMATHESIS_EXAMPLES:-100} $(BIN)/pytest -q tests/api/test_schemathesis.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-deps: $(VENV)/.installed-bench

clean:
	rm -rf $(VENV) var demo-output
