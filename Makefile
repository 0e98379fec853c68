# The two commands: `make run` serves the API on demo data, `make test` runs every test.
# Both need only Python 3.11+; a local PostgreSQL starts when DATABASE_URL is unset.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint format soak chaos bench bench-report bench-pictures stop-db clean

$(VENV)/installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

run: $(VENV)/installed
	$(BIN)/python devserver.py

test: $(VENV)/installed
	$(BIN)/python -m pytest

# ruff's rules and the reasons for them are in pyproject.toml; `make format` applies them.
lint: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stop-db: $(VENV)/installed
	$(BIN)/python -c 'import embedded_postgres as e; e.stop(e.DEV_DATA_DIR); e.stop(e.TEST_DATA_DIR)'

clean: stop-db
	rm -rf $(VENV) .dev

# Load and soak: wrk against gunicorn on the demo world, then across a database restart.
soak: $(VENV)/installed
	@command -v wrk >/dev/null || { echo "make soak needs wrk: apt-get install wrk"; exit 1; }
	$(BIN)/python bench/soak.py

# The recommended topology (primary, standby, PgBouncer, two app instances, nginx) under
# load while parts are taken away, longer than tests/test_topology.py; prints a table.
CHAOS_SECONDS ?= 15
chaos: $(VENV)/installed
	$(BIN)/python -m tests.topology --seconds $(CHAOS_SECONDS)

# Benchmarks: every endpoint x caller on a generated world of SIZE uploads, against a
# framework floor and a database floor. Results in bench/results.md; `make bench SIZE=100000`.
SIZE ?= 1000000
$(VENV)/bench-installed: $(VENV)/installed bench/requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench: $(VENV)/bench-installed
	@command -v wrk >/dev/null || { echo "make bench needs wrk: apt-get install wrk"; exit 1; }
	SIZE=$(SIZE) $(BIN)/python bench/run.py

# Every saved run judged again against the targets (the scaling one against the 100k run
# saved now), and results.md rewritten from them; no measuring.
bench-report: $(VENV)/bench-installed
	$(BIN)/python bench/report.py

# The pictures again from the saved results (bench/results-*.json), without measuring.
bench-pictures: $(VENV)/bench-installed
	$(BIN)/python bench/pictures.py
