# The two commands of the README do all set-up on a fresh machine:
#   make demo   creates .venv, installs warden, runs it on examples/
#   make test   installs the test dependencies, runs lint and the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint pytest bench stress fuzz schema-sync clean pg-bootstrap

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

# PostgreSQL server binaries for tests/fleet (a throwaway server per test session): Debian's
# `postgresql` package when no initdb is found; if that fails too, those tests are skipped.
pg-bootstrap:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
	  :; \
	else \
	  echo "make: installing Debian's postgresql for the fleet tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends postgresql >/dev/null ) \
	    || echo "make: could not install postgresql: the PostgreSQL tests will be skipped"; \
	fi

pytest: $(VENV)/.test-installed pg-bootstrap
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
