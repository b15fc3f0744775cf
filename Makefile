# internflow: `make demo` runs one internship end to end; `make test` runs the checks and tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed

# Installs are exactly uv.lock, never whatever the package index holds today: uv itself comes from
# deploy/tools.lock (pip, hashes required), then `uv sync --locked` installs every locked
# distribution (hashes checked) and refuses to run when uv.lock no longer matches pyproject.toml.
# uv never downloads a Python of its own here: the venv is $(PYTHON)'s.
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test test-fast lint lock up drill bench clean help

help:
	@echo "make demo   - start the embedded stack and run one internship to a verified badge (DEBUG=1: debug log lines too)"
	@echo "make test   - lint, type-check, check the imports between layers and run the test suite on the embedded parts (and Node verifiers)"
	@echo "make test-fast - the pure and fast layers: rules, badges, e-mails, and the workflow on stand-in activities"
	@echo "make up     - start the embedded stack (Temporal, PostgreSQL, mail sink, worker)"
	@echo "make drill  - fault drill: 50 internships through worker kills and outages"
	@echo "make bench  - benchmarks; prints a table and writes bench/results.json (DEBUG=1: debug log lines too)"
	@echo "make lock   - take the newest releases within pyproject.toml's ranges into uv.lock and its exports"
	@echo "make clean  - remove the virtual environment and the local state (.internflow/)"

$(VENV)/.uv: deploy/tools.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "internflow needs Python 3.11 or newer (set PYTHON=python3.11)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r deploy/tools.lock
	touch $@

$(STAMP): pyproject.toml uv.lock $(VENV)/.uv
	$(UV) sync --locked --all-extras --quiet
	touch $@

# Deliberate: the only command that asks the package index what is newest. Review the diff of
# uv.lock, run `make test`, commit uv.lock with its exports.
lock: $(VENV)/.uv
	$(UV) lock --upgrade
	$(UV) sync --locked --all-extras --quiet
	$(BIN)/python deploy/locks.py write
	touch $(STAMP)

# DEBUG=1: every log line on the console, debug ones too (by default info and above).
demo: $(STAMP)
	$(BIN)/python -m cli demo $(if $(DEBUG),--debug)

up: $(STAMP)
	$(BIN)/python -m cli up

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(DEBUG),--debug)

drill: $(STAMP)
	$(BIN)/python -m bench.drill

# The documentation's relative links and #anchors (README.md, docs/, bench/README.md) must lead
# somewhere: deploy/check_links.py names every broken one.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python deploy/check_links.py

# The interoperability suite (tests/interop) runs independent verifiers under Node.js, pinned by
# tests/interop/package-lock.json; npm ci installs them when they are missing or out of date.
INTEROP := tests/interop

$(INTEROP)/node_modules/.package-lock.json: $(INTEROP)/package.json $(INTEROP)/package-lock.json
	npm ci --prefix $(INTEROP) --no-audit --no-fund

# Two test processes (pytest-xdist), each with its own embedded PostgreSQL, Temporal dev servers
# and mail sinks on free ports: most of a test's time is spent waiting on real parts, so two
# share the machine's cores well. TEST_PROCESSES=0 runs them all in this process.
TEST_PROCESSES ?= 2

test: lint $(INTEROP)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal

# The two lower layers, by marker (pyproject.toml): `pure` (the rules, the badges, the e-mails'
# composition, the replay of recorded histories: no real part) and `fast` (the real workflow code
# on the time-skipping server with stand-in activities: no PostgreSQL, no SMTP).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "pure or fast" -n $(TEST_PROCESSES) --dist loadfile

clean:
	rm -rf $(VENV) .internflow $(INTEROP)/node_modules
