# Lathe developer entry points. `make demo` runs the local end-to-end loop,
# `make test` installs what the tests need (cached outside the repo) and runs them.
SHELL := /bin/bash
export LATHE_CACHE ?= $(HOME)/.cache/lathe
export PYTHONPATH := $(CURDIR)/core:$(CURDIR)/operator:$(CURDIR)/pipelines:$(CURDIR)/serving:$(CURDIR)
VENV = $(shell hack/venv.sh)
PY = $(VENV)/bin/python

.PHONY: help tools venv crds pipelines check-crds lint format test test-all unit integration e2e demo demo-cluster operator

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

tools: ## Install or build every real server and binary the tests use
	hack/setup.sh

venv: ## Create the Python environment and print its path
	@hack/venv.sh

crds: ## Regenerate the CRDs from the pydantic models
	$(PY) -m lathe_operator crds

pipelines: ## Recompile the checked-in training pipeline IR
	$(PY) -c "from lathe_pipelines import training; open('pipelines/compiled/training.yaml', 'w').write(training.compile_yaml(training.build()))"

check-crds: ## Fail when the checked-in CRDs differ from the models
	$(PY) -m lathe_operator crds --check

RUFF = $(shell hack/ruff.sh)

lint: ## ruff format and lint checks, then import layering (import-linter)
	$(RUFF) format --check .
	$(RUFF) check .
	cd $(CURDIR) && $(VENV)/bin/lint-imports

format: ## Format the code and apply ruff's safe fixes
	$(RUFF) format .
	$(RUFF) check --fix .

test: tools ## Install everything, then run the unit, integration and end-to-end (the demo's loop) tests
	$(MAKE) lint
	$(PY) -m pytest tests/unit tests/integration tests/e2e -m "not faults" $(PYTEST_ARGS)

test-all: tools ## make test, then the slow fault tests (the operator killed at each failpoint)
	$(MAKE) test
	$(PY) -m pytest tests/integration -m faults $(PYTEST_ARGS)

unit: ## Unit tests only (no servers)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: tools ## Integration tests against real servers
	$(PY) -m pytest tests/integration -m "not faults" $(PYTEST_ARGS)

e2e: tools ## The local demo loop as a test
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

demo: tools ## The local end-to-end demo
	$(PY) hack/demo.py

demo-cluster: tools ## The demo's steps in a one-node cluster: helm install, Jobs, training and serving in pods
	$(PY) hack/demo_cluster.py

operator: ## Run the operator against the current kube context, all namespaces
	$(PY) -m lathe_operator operator --all-namespaces --log-format full
