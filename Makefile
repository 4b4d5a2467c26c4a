# modelstream — developer entry points. Every target installs what it needs, idempotently.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: setup test unit integration demo lint format bench clean kafka-jars chromium

setup: $(STAMP) kafka-jars

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3.x'"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

kafka-jars: $(STAMP)
	@$(BIN)/modelstream kafka jars

# Debian's chromium, for the tests that render the catalogue and portal pages
chromium:
	@scripts/install-chromium

# unit tests (no network) on two workers; integration tests on two workers too, each with
# its own broker, a test file's tests on one worker (its module fixtures are made once)
test: setup chromium
	$(BIN)/python -m pytest -q -n 2 tests/unit schemas streams services
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests/integration

unit: setup
	$(BIN)/python -m pytest -q -n 2 tests/unit schemas streams services

integration: setup chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests/integration

demo: setup
	$(BIN)/modelstream demo

bench: setup
	$(BIN)/modelstream bench

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .modelstream .pytest_cache .mypy_cache .ruff_cache
