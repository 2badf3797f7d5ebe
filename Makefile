# ti-anomali: serverless Anomali ThreatStream collector. `make help` lists the targets.
#
# To add a target, give it a `## description` so `make help` lists it, declare it .PHONY next to
# its rule, and put it in the section it belongs to.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# aws-sam-cli, cfn-lint, pip-audit and uv live apart from the project: aws-sam-cli pins its own
# ranges of boto3, click and jsonschema.
TOOLS_VENV := .venv-tools
TOOLS := $(TOOLS_VENV)/bin
TOOLS_STAMP := $(TOOLS_VENV)/.installed

DEV_LOCK := requirements/dev.lock
TOOLS_LOCK := requirements/tools.lock
LAYER_REQUIREMENTS := layers/ti_anomali/requirements.txt
LAYER_LOCK := layers/ti_anomali/requirements.lock
LOCKS := $(DEV_LOCK) $(TOOLS_LOCK) $(LAYER_LOCK)
# Extra flags for `make lock`, such as LOCK_FLAGS=--upgrade or LOCK_FLAGS="--upgrade-package requests".
LOCK_FLAGS ?=

BUILD_DIR := .aws-sam/build
# sam build checks that an interpreter of the functions' runtime (python3.12) is on PATH, even
# though the functions have no dependencies to install. A `python3.12` that is really another
# version is rejected, so point PYTHON312_BIN at the bin folder of a real 3.12.
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHON312_BIN ?= $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/3.12.*/bin)))
# SAM needs a region to load, never credentials: validate and build make no AWS calls. Its
# global config lives in the project, with telemetry off and the weekly version check (a request
# to PyPI after each command) marked as done until 2100.
SAM_CONFIG_DIR := $(CURDIR)/.cache/sam-cli
SAM := __SAM_CLI_APP_DIR=$(SAM_CONFIG_DIR) AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(TOOLS)/sam

export SAM_CLI_TELEMETRY := 0
export AWS_EC2_METADATA_DISABLED := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

# --- Environments -----------------------------------------------------------------------------

# Both environments install exactly their lock (--no-deps, every file hash-checked); pip check
# then fails if the lock is missing a dependency, and `make lock` is the fix.
$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

$(TOOLS_STAMP): $(TOOLS_LOCK)
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS)/pip install --quiet --require-hashes --no-deps -r $(TOOLS_LOCK)
	$(TOOLS)/pip check
	mkdir -p $(SAM_CONFIG_DIR)
	echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800}' > $(SAM_CONFIG_DIR)/metadata.json
	touch $(TOOLS_STAMP)

.PHONY: setup
setup: local-parts $(TOOLS_STAMP) ## Create .venv (project, `ti-anomali` command, local OpenSearch node) and .venv-tools (SAM CLI, cfn-lint)

# What make run and the tests need: the project, an OpenSearch node, the GeoIP test database and
# Chromium for the report tests (installed with apt-get only when missing).
.PHONY: local-parts
local-parts: $(STAMP)
	$(BIN)/python -m local.opensearch_node fetch
	$(BIN)/python -m local.geoip_test_db
	bash local/chromium.sh

# --- Run and test -----------------------------------------------------------------------------

.PHONY: run
run: local-parts ## Run the fetch function on local parts (simulator, OpenSearch, moto) and print a run summary
	$(BIN)/python -m local.run

.PHONY: test
test: setup validate build audit ## Validate and build the SAM app, audit the locks, run every test, then the fault scenarios
	$(BIN)/python -m pytest
	$(BIN)/python -m local.faults

.PHONY: faults
faults: local-parts ## Run every fault scenario once on the local stack and check nothing was lost or doubled
	$(BIN)/python -m local.faults

.PHONY: soak
soak: local-parts ## Push SOAK_UPDATES (default 1,000,000) updates through the stack under random faults (SOAK_SEED to repeat a run)
	$(BIN)/python -m local.faults --soak --updates $${SOAK_UPDATES:-1000000} $${SOAK_SEED:+--seed $$SOAK_SEED}

.PHONY: invoke-fetch
invoke-fetch: local-parts ## Invoke FetchIntelligence on the local stack with EVENT (default events/fetch-scheduled.json)
	$(BIN)/python -m local.invoke fetch_intelligence $${EVENT:-events/fetch-scheduled.json}

.PHONY: invoke-latest
invoke-latest: local-parts ## Invoke MaintainLatest on the local stack with EVENT (default events/latest-scheduled.json)
	$(BIN)/python -m local.invoke maintain_latest $${EVENT:-events/latest-scheduled.json}

.PHONY: invoke-push
invoke-push: local-parts ## Send the push events in events/ (valid, bad signature, malformed line) to ReceiveThreatstream locally
	$(BIN)/python -m local.invoke receive_threatstream events/push-valid.json events/push-bad-signature.json events/push-malformed-line.json

.PHONY: test-unit
test-unit: $(STAMP) ## Run the unit tests only (no network, no node)
	$(BIN)/python -m pytest tests/unit

.PHONY: lint
lint: $(STAMP) ## Check style and types
	$(BIN)/ruff check layers functions local tests scripts
	$(BIN)/mypy

# --- Supply chain -----------------------------------------------------------------------------

.PHONY: lock
lock: $(TOOLS_STAMP) ## Recompile the hash-pinned locks from requirements/*.in, pyproject.toml and the layer's requirements.txt (needs PyPI)
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/uv pip compile --quiet --generate-hashes $(LOCK_FLAGS) \
		--python-version 3.11 requirements/tools.in --output-file $(TOOLS_LOCK)
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/uv pip compile --quiet --generate-hashes $(LOCK_FLAGS) \
		--python-version 3.11 pyproject.toml requirements/dev.in --extra dev --extra report \
		--constraint $(LAYER_REQUIREMENTS) --output-file $(DEV_LOCK)
	UV_CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS)/uv pip compile --quiet --generate-hashes $(LOCK_FLAGS) \
		--python-version 3.12 --python-platform aarch64-manylinux2014 $(LAYER_REQUIREMENTS) \
		--no-emit-package boto3 --no-emit-package botocore --no-emit-package s3transfer \
		--output-file $(LAYER_LOCK)

.PHONY: audit
audit: $(TOOLS_STAMP) ## Check every lock for known vulnerabilities with pip-audit (AUDIT_REQUIRED=1: fail if it cannot run)
	$(TOOLS)/python scripts/audit_locks.py $(LOCKS)

# --- SAM --------------------------------------------------------------------------------------

.PHONY: validate
validate: $(TOOLS_STAMP) ## Lint template.yaml with sam validate --lint and cfn-lint (no AWS credentials needed)
	$(SAM) validate --lint --template template.yaml
	$(TOOLS)/cfn-lint template.yaml

.PHONY: build
build: $(TOOLS_STAMP) ## sam build for arm64 without containers, then print artifact sizes and check the layer
	@if [ -z "$(PYTHON312_BIN)" ] || [ ! -x "$(PYTHON312_BIN)/python3.12" ]; then \
		echo "build: no Python 3.12 found under $(PYENV_ROOT)/versions; run 'pyenv install 3.12' or set PYTHON312_BIN to the bin folder of a Python 3.12" >&2; \
		exit 1; \
	fi
	PATH="$(abspath $(PYTHON312_BIN)):$$PATH" LAYER_PIP="$(abspath $(TOOLS))/python -m pip" \
		$(SAM) build --template template.yaml --build-dir $(BUILD_DIR)
	$(TOOLS)/python scripts/check_build.py $(BUILD_DIR)

.PHONY: deploy
deploy: build ## Deploy with sam deploy --guided (needs AWS credentials; docs/deploy.md answers its questions)
	$(TOOLS)/sam deploy --guided --template-file $(BUILD_DIR)/template.yaml

# --- Housekeeping -----------------------------------------------------------------------------

.PHONY: ci
ci: test ## Run exactly what CI runs

.PHONY: clean
clean: ## Remove the virtual environments, caches and SAM build output
	rm -rf $(VENV) $(TOOLS_VENV) .cache .pytest_cache .mypy_cache .ruff_cache .aws-sam

# --- Dashboards ---------------------------------------------------------------------------------

.PHONY: dashboards
dashboards: $(STAMP) ## Import the saved objects into Kibana or OpenSearch Dashboards at DASHBOARDS_URL (see local/dashboards_import.py)
	$(BIN)/python -m local.dashboards_import

# --- Benchmarks -------------------------------------------------------------------------------

.PHONY: bench
bench: setup ## Run every benchmark and write bench/results.json and bench/RESULTS.md
	$(BIN)/python -m bench
