# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
# Each creates .venv when missing and reinstalls the pinned requirements when they change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test test-embedded test-services bench worker sandbox migrate clean help
.DEFAULT_GOAL := help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(INSTALLED): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

run: $(INSTALLED)  ## Web app (port 3000), worker and Intuit simulator (port 3001) on the embedded default
	$(PY) -m dashboard.devserver

test: $(INSTALLED)  ## Import rules, then the whole suite on SQLite + SqliteHuey, then on PostgreSQL + Redis
	$(VENV)/bin/lint-imports --no-cache
	TEST_BACKEND=embedded $(PY) -m pytest
	TEST_BACKEND=services $(PY) -m pytest

test-embedded: $(INSTALLED)  ## The suite on the embedded backend only
	TEST_BACKEND=embedded $(PY) -m pytest

test-services: $(INSTALLED)  ## The suite on PostgreSQL + Redis only (TEST_DATABASE_URL, TEST_REDIS_URL)
	TEST_BACKEND=services $(PY) -m pytest

bench: $(INSTALLED)  ## Benchmarks against a baseline measured in the same run (not part of test)
	$(PY) -m benchmarks

worker: $(INSTALLED)  ## Only the Huey consumer
	$(VENV)/bin/flask --app wsgi worker

sandbox: $(INSTALLED)  ## Only the Intuit simulator
	$(VENV)/bin/flask --app wsgi sandbox

migrate: $(INSTALLED)  ## Apply database migrations
	$(VENV)/bin/flask --app wsgi db upgrade

clean:  ## Remove the virtualenv and the embedded database (instance/)
	rm -rf $(VENV) instance
