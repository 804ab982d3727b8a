# ratepad — developer entry points. `make setup` is idempotent; `make test` runs everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ratepad-setup

.PHONY: setup test lint typecheck unit smoke docs wheel demo generate vectors check-generated bench clean

setup: $(STAMP) node_modules/.package-lock.json
	command -v tshark >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark)
	# the server's tests start throwaway PostgreSQL clusters (initdb + pg_ctl), never a system one;
	# the web's and the bridge's pages are tested in headless Chromium; msgfmt compiles catalogs;
	# a CJK font renders the Chinese pages in screenshots and is embedded in the monthly PDF
	# (RATEPAD_PDF_FONT's default: fonts-wqy-microhei's .ttc); luac checks the dissector's Lua;
	# pgbackrest and pg_auto_failover for the backup and failover drills
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v msgfmt >/dev/null && test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc && command -v luac5.2 >/dev/null && command -v pgbackrest >/dev/null && command -v pg_autoctl >/dev/null || (DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium chromium-driver gettext fonts-wqy-microhei lua5.2 pgbackrest postgresql-15-auto-failover pg-auto-failover-cli)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,report,bridge,testing,hid,usb,flash,server,loadtest]'
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

generate: setup
	PYTHONPATH=protocol $(PY) -m ratepad_protocol.generate

vectors: setup
	PYTHONPATH=protocol $(PY) -m ratepad_protocol.make_vectors

check-generated: setup
	PYTHONPATH=protocol $(PY) -m ratepad_protocol.generate --check

lint: setup
	$(VENV)/bin/ruff check host protocol server tests bench docs setup.py
	$(VENV)/bin/ruff format --check host protocol server tests bench docs setup.py

typecheck: setup
	$(VENV)/bin/mypy

# Three worker processes on two cores: many tests wait on servers, browsers and emulators. One
# test file per worker at a time (--dist loadfile): a file's module-wide fixtures (a keypad's life
# in order, a browser) stay in one process; each worker has its own PostgreSQL cluster. Files go
# out in collection order, the longest first (tests/conftest.py, LONGEST_FIRST).
unit: setup
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder

# Build the wheel, install it alone in a fresh virtualenv and use it outside the checkout.
smoke: setup
	$(PY) tests/smoke/wheel_smoke.py

test: lint typecheck check-generated docs unit smoke

# The documentation site, offline, warnings as errors (broken internal links included).
docs: setup
	$(VENV)/bin/sphinx-build -W --keep-going -E -q -b html docs build/docs

wheel: setup
	$(PY) -m build --wheel --outdir dist .

demo: setup
	$(VENV)/bin/ratepad server demo

bench: setup
	PYTHONPATH=protocol $(PY) bench/bench_decode.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
