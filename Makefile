# jobconsole: `make run` (the whole platform, nothing to configure) and `make test` (every test).
#
# The virtual environment is .venv/. A stamp file beside it records that the dependencies of
# pyproject.toml are installed; it is remade only when pyproject.toml changes, so a second
# `make run` skips it (its banner comes after about 4.5 s on 2 cores: serve migrates and checks the
# first admin in its own process, then starts the web server, workers and scheduler).

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PIP    := $(PY) -m pip --disable-pip-version-check --no-input
MANAGE := $(PY) manage.py

# `make test` runs against PostgreSQL and Redis; these defaults fit the dev machines and CI.
TEST_DATABASE_URL ?= postgres://127.0.0.1:5432/test
TEST_REDIS_URL    ?= redis://127.0.0.1:6379/15
PYTEST_ARGS       ?=

.DEFAULT_GOAL := help
.PHONY: help run install install-dev migrate admin test test-fast typecheck check clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install --quiet '.[dev]'
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the project

install-dev: $(VENV)/.installed-dev  ## install the project with its test tools

migrate: install  ## apply database migrations
	$(MANAGE) migrate --no-input

admin: migrate  ## make sure a first admin user exists (ADMIN_USERNAME, ADMIN_PASSWORD)
	$(MANAGE) ensure_admin --url http://127.0.0.1:$${PORT:-8000}/admin/

run: install  ## install, then `manage.py serve`: migrate, first admin, web server + workers + scheduler (Ctrl-C stops)
	$(MANAGE) serve

# pytest's exit code 5 means it collected no test: that must fail, loudly.
PYTEST = DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" REDIS_URL="$${REDIS_URL:-$(TEST_REDIS_URL)}" $(BIN)/pytest
NO_TESTS = rc=$$?; if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests" >&2; fi; exit $$rc

test: install-dev  ## every test, on PostgreSQL and Redis (DATABASE_URL, REDIS_URL override)
	@$(PYTEST) $(PYTEST_ARGS); $(NO_TESTS)

test-fast: install-dev  ## the pure and engine tests: no worker processes, browser or media (-m "not slow and not browser and not media")
	@$(PYTEST) -m "not slow and not browser and not media" $(PYTEST_ARGS); $(NO_TESTS)

typecheck: install-dev  ## mypy, check_untyped_defs on, over every app and bench/ (the files list in pyproject.toml)
	$(BIN)/mypy

check: typecheck test  ## typecheck, then every test

clean:  ## remove .venv and caches (keeps var/: the database, Redis data, admin password)
	rm -rf $(VENV) .mypy_cache .pytest_cache *.egg-info
