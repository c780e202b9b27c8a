# PriceMyRide — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | sha1sum | cut -c1-12)-bytecode
DATA ?=
ifdef KAFKA_BROKERS
export PRICEMYRIDE_KAFKA_BROKERS := $(KAFKA_BROKERS)
endif
RATE ?= 20
CASES ?= 100000

.DEFAULT_GOAL := help
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
# A temporary Prefect server (a flow called in-process) gets 20 s to start by default: not always enough on a busy
# 2-core machine (a CI run timed out there)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
.PHONY: help install system up down status demo demo-drift bench chaos fuzz audit test test-unit test-e2e test-integration lint format schema train evaluate tune share-choice clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (this machine, the image) Python
# would otherwise compile every imported module on every start — a worker started in 6.5 s instead of 2.7.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==0.13.9
	@echo "[install] Python packages from requirements.lock"
	@$(VENV)/bin/uv pip install -q --python $(PY) --compile-bytecode -r requirements.lock
	@$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## create .venv with the pinned packages

system: ## check (as root on Debian: install) Java, Maven, PostgreSQL
	@bash scripts/system-deps.sh

up: system install ## start Kafka and Postgres, create topics and schema (idempotent)
	@$(PY) -m infra up

down: ## stop the demo processes, Kafka and Postgres
	@test -x $(PY) && $(PY) -m infra down || true

status: install ## which services answer
	@$(PY) -m infra status

demo: up ## run the whole system: model, worker, producer, dashboard (DATA=file.csv for real listings)
	@$(PY) -m infra.demo start --rate $(RATE) $(if $(DATA),--data $(DATA))

demo-drift: up ## the closed loop on real data: 2020 champion, 2021 stream → drift → retrain → hot swap
	@$(PY) -m infra.demo_drift

bench: up ## benchmarks on the real broker and database → reports/bench.{json,md}
	@$(PY) -m benchmarks.run

chaos: up ## failure scenarios (bad input, crashes, outages, registry, scale-out) → reports/reliability.{json,md}
	@$(PY) -m pytest -m long tests/integration
	@$(PY) -m infra.chaos_run

fuzz: install ## fuzz the worker's scoring step with a real model, CASES (100,000) → reports/fuzz.log
	@mkdir -p reports
	@set -o pipefail; $(PY) -m tests.fuzzing --cases $(CASES) | tee reports/fuzz.log

audit: install ## known vulnerabilities in the image's packages (pip-audit over requirements.prod.lock; needs PyPI's per-version JSON or OSV)
	@$(VENV)/bin/uv tool run --quiet pip-audit==2.10.1 -r requirements.prod.lock --disable-pip --progress-spinner off

# Unit and model tests need no services and run on both cores (pytest-xdist: 3 min → under 2); the integration
# and browser tests share one broker, database and registry and run one at a time after them.
test: up ## run every test against the real broker, database and registry
	@$(PY) -m pytest -n 2 tests/unit tests/model
	@$(PY) -m pytest tests/integration tests/e2e

test-e2e: up ## dashboard tests in headless Chromium over a seeded database (screenshots: test-artifacts/e2e)
	@$(PY) -m pytest tests/e2e

test-integration: up ## integration tests against the real broker, database, registry and Prefect
	@$(PY) -m pytest tests/integration

test-unit: install ## unit tests only (no services)
	@$(PY) -m pytest -n 2 tests/unit

lint: install ## ruff + mypy + import-linter's layer contracts (never modifies)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy
	@$(VENV)/bin/lint-imports

format: install ## apply ruff's fixes and formatting
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

schema: install ## export the Listing JSON Schema to schemas/listing.schema.json
	@mkdir -p schemas
	@$(PY) -m pricemyride_cli schema --out schemas/listing.schema.json

train: up ## train and register a model; the gate decides on @champion (DATA=file.csv, else the generator; POOL=other year)
	@$(PY) -m pricemyride_cli train $(if $(DATA),--data $(DATA)) $(if $(POOL),--pool $(POOL))

evaluate: install ## per-slice quality report, 3 seeds → reports/model_quality.{json,md} (DATA=, POOL=, VINTAGE= files)
	@$(PY) -m pricemyride_cli evaluate --seeds 3 $(if $(DATA),--data $(DATA)) $(if $(POOL),--pool $(POOL)) $(if $(VINTAGE),--vintage $(VINTAGE))

tune: install ## hyperparameter search on validation data, full budget → reports/tuning.json (DATA=…, POOL=other-year file)
	@$(PY) -m pricemyride_cli tune --trials 30 $(if $(DATA),--data $(DATA)) $(if $(POOL),--pool $(POOL))

share-choice: install ## choose the source guard's max_share on validation (2021 file, honest + copying flood) → reports/source_share.json
	@$(PY) -m training.share_choice $(if $(DATA_DIR),--data-dir $(DATA_DIR))

clean: down ## stop everything and delete local state (.state)
	rm -rf .state
