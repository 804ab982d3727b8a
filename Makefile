# ratepad — developer entry points. `make setup` is idempotent; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ratepad-setup

.PHONY: setup test lint typecheck unit demo generate vectors check-generated bench clean

setup: $(STAMP) node_modules/.package-lock.json
	command -v tshark >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark)
	# the server's tests start throwaway PostgreSQL clusters (initdb + pg_ctl), never a system one
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,hid,usb,server]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

generate: setup
	$(PY) -m ratepad_protocol.generate

vectors: setup
	$(PY) -m ratepad_protocol.make_vectors

check-generated: setup
	$(PY) -m ratepad_protocol.generate --check

lint: setup
	$(VENV)/bin/ruff check host protocol server tests bench
	$(VENV)/bin/ruff format --check host protocol server tests bench

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest

test: lint typecheck check-generated unit

demo: setup
	$(VENV)/bin/ratepad server demo

bench: setup
	$(PY) bench/bench_decode.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
