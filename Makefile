# Two commands matter: `make run` (demo on SQLite + the local simulator) and `make test`.
# Both set themselves up on a fresh machine with Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
PORT   ?= 8000
SIM_PORT ?= 8001

.PHONY: help setup run serve simulator test soak lint typecheck pytest migrate browser-deps clean \
        bench-queries bench image-check

help:
	@echo "make run    start the service (SQLite) and the Payletter simulator"
	@echo "make test   lint, type checks and the whole test suite (SQLite + PostgreSQL)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

migrate: setup
	@mkdir -p var
	$(BIN)/alembic upgrade head

# --no-proxy-headers: the app alone decides who is calling (TRUSTED_PROXIES).
serve: migrate
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-proxy-headers

run: migrate
	$(BIN)/python -m scripts.run_demo --host $(HOST) --port $(PORT) --sim-port $(SIM_PORT)

lint: setup
	$(BIN)/ruff check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest

browser-deps:
	@bash scripts/ensure-browser.sh

test: browser-deps lint typecheck pytest

# The reliability scenarios at full size (tests/reliability; `make test` runs them smaller),
# then docs/reliability.md from their figures, also when one failed (it says which).
soak: setup
	RELIABILITY_SCALE=full $(BIN)/pytest tests/reliability -q -p no:cacheprovider \
	    --junitxml=test-artifacts/reliability/full/junit.xml; \
	status=$$?; $(BIN)/python -m tests.reliability.report; exit $$status

bench-queries: setup
	$(BIN)/python -m bench.order_queries

# Callback and order-creation load (bench/load.py; wrk from Debian when root, else Python).
bench: setup
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache test-artifacts

# Opt-in, not part of `make test`: build both images for real and run them (starts a Docker
# engine and makes a local Debian base image when needed); writes docs/container-check.md.
image-check: setup
	$(BIN)/python -m scripts.image_check
