# The two commands of the README do all set-up on a fresh machine:
#   make demo   creates .venv, installs warden, runs it on examples/
#   make test   installs the test dependencies, runs lint and the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint pytest bench stress fuzz schema-sync clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

schema-sync:
	cp schema/*.json src/warden/schema/

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

lint: $(VENV)/.test-installed
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

pytest: $(VENV)/.test-installed
	$(BIN)/python -m pytest

test: lint pytest

bench: $(VENV)/.test-installed
	$(BIN)/python -m pip install -q -e '.[bench]' || echo "bench extras partly unavailable"
	$(BIN)/python bench/run.py

stress: $(VENV)/.test-installed
	WARDEN_STRESS=1 $(BIN)/python -m pytest -m stress tests

fuzz: $(VENV)/.test-installed
	$(BIN)/python -m pip install -q atheris || true
	$(BIN)/python fuzz/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
