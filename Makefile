# ti-anomali: serverless Anomali ThreatStream collector. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup run test test-unit test-integration lint build validate invoke-fetch deploy bench ci clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv with the project, the `ti-anomali` command and the local OpenSearch node
	$(BIN)/python -m local.opensearch_node fetch
	$(BIN)/python -m local.geoip_test_db

run: setup ## Run the fetch function on local parts (simulator, OpenSearch, moto) and print a run summary
	$(BIN)/python -m local.run

test: setup ## Run every test: unit and integration (real OpenSearch node, simulator, moto)
	$(BIN)/python -m pytest

test-unit: $(STAMP) ## Run the unit tests only (no network, no node)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP) ## Check style and types
	$(BIN)/ruff check layers functions local tests
	$(BIN)/mypy

ci: test ## Run exactly what CI runs

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache .aws-sam
