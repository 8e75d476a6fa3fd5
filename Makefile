# The two commands a newcomer needs: `make run` and `make test`.
# Everything else is what they are made of.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# build-constraints.txt pins setuptools for the packages that build from source.
PIP    := PIP_CONSTRAINT=build-constraints.txt $(PY) -m pip --disable-pip-version-check
PORT   ?= 8000
export PORT

.DEFAULT_GOAL := help
.PHONY: help run test test-sqlite test-postgres bench mutation setup setup-dev migrate seed check compose-check clean

help:
	@echo "make run    - set up, migrate, load demo data on first run, start web + worker + beat"
	@echo "make test   - set up and run the whole test suite (SQLite; PostgreSQL + Redis too on CI)"
	@echo "make bench  - benchmarks on PostgreSQL + Redis, results in bench/results/"
	@echo "make mutation [MODULES=\"workspace/access.py ...\"] - mutation testing of the modules that guard people and data"

# The virtualenv is rebuilt when the Python it came from is gone, and
# dependencies are reinstalled when a requirements file changes.
$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; this is " + sys.version.split()[0] + ". Set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(PIP) install -q -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed
	@mkdir -p var/mail var/broker

setup-dev: setup $(VENV)/.installed-dev

migrate: setup
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py seed_demo_sequences --if-empty
	$(PY) manage.py seed_demo_forms --if-empty
	$(PY) manage.py seed_demo_scoring --if-empty
	$(PY) manage.py seed_demo_booking --if-empty

run: seed
	$(PY) manage.py run_all --port $(PORT)

test: setup-dev
	CI=$(CI) bash scripts/test-suite

bench: setup-dev
	bash scripts/bench

# Not part of `make test`: it takes minutes per module (see README, "Mutation testing").
# UNKILLED=1 runs again only the mutants the last run did not kill.
MODULES ?=
mutation: setup-dev
	$(PY) scripts/mutation.py $(if $(UNKILLED),--unkilled) $(MODULES)

check: setup-dev
	$(VENV)/bin/ruff check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

compose-check:
	docker-compose config -q

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
