# serverless-payments: every target installs what it needs first (a virtualenv in .venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
RUN_REQS  := infra/requirements-run.txt layers/paycore/requirements.txt
REQS   := infra/requirements-dev.txt $(RUN_REQS)
ENV    ?= dev
# checkov lives in its own virtualenv: checkov 3.3.x pins a boto3 that aws-sam-cli's conflicts with.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help install run test test-unit test-integration test-e2e lint format validate checkov bandit audit build deploy seed keys simulate clean openapi fuzz bench

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# Installs go through uv (pinned, installed into the venv by pip first): it fetches in parallel,
# which takes a fresh clone from nothing to a running API in seconds instead of a minute or more
# with pip alone. Should uv fail for any reason, pip installs the same pinned files.
UV := $(VENV)/bin/uv
define pip_install
	$(UV) pip install --quiet --python $(PY) $(1) || $(PY) -m pip install --quiet $(1)
endef

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found %s)" % sys.version.split()[0])'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.9
	touch $(UV)

# `make run` installs only what the local stack needs; every other target installs the full dev
# set, which includes the run set.
$(RUN_STAMP): $(RUN_REQS) | $(UV)
	$(call pip_install,-r infra/requirements-run.txt)
	touch $(RUN_STAMP)

$(STAMP): $(REQS) $(RUN_STAMP)
	$(call pip_install,-r infra/requirements-dev.txt)
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned requirements

$(CHECKOV_STAMP): infra/requirements-checkov.txt | $(UV)
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(UV) pip install --quiet --python $(CHECKOV_VENV)/bin/python -r infra/requirements-checkov.txt \
	  || $(CHECKOV_VENV)/bin/python -m pip install --quiet -r infra/requirements-checkov.txt
	touch $(CHECKOV_STAMP)

run: $(RUN_STAMP) ## start the local stack on http://127.0.0.1:3000 (Ctrl-C stops it; RUN_ARGS="--help" lists options)
	$(PY) -m infra.local $(RUN_ARGS)

test: $(STAMP) ## run every suite: unit, integration (moto) and e2e (HTTP against the local stack)
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

test-e2e: $(STAMP)
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

openapi: $(STAMP) ## regenerate docs/openapi.json from the handlers and template.yaml (a unit test fails when it is stale)
	PYTHONPATH=layers/paycore:. $(PY) -m infra.openapi

fuzz: $(STAMP) ## schemathesis against a fresh local stack (the e2e test that `make test` runs too; docs/reliability.md)
	$(PY) -m pytest tests/e2e/test_fuzz.py -s $(PYTEST_ARGS)

lint: $(STAMP) $(CHECKOV_STAMP) ## ruff, mypy, then the gates of docs/security-gates.md: validate, checkov, bandit, pip-audit
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	@$(MAKE) --no-print-directory validate checkov bandit audit

checkov: $(STAMP) $(CHECKOV_STAMP) ## checkov on template.yaml and on its SAM transform; suppressions need a reason
	$(PY) -m infra.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov

bandit: $(STAMP) ## bandit over layers/ functions/ infra/ (configured in pyproject.toml)
	$(VENV)/bin/bandit --quiet --configfile pyproject.toml --recursive layers functions infra

audit: $(STAMP) ## pip-audit over the pinned requirements; says "not checked" when OSV cannot be reached
	$(PY) -m infra.audit_requirements -r layers/paycore/requirements.txt -r infra/requirements-dev.txt

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

validate: $(STAMP) ## cfn-lint and sam validate --lint (no AWS account needed)
	$(VENV)/bin/cfn-lint template.yaml
	AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template template.yaml

build: $(STAMP) ## sam build for arm64 (needs a python3.13 interpreter; found through pyenv)
	@PY313="$$(infra/find-python313.sh)" || exit 1; \
	echo "sam build with $$PY313"; \
	PATH="$$(dirname $$PY313):$$PATH" SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build --template template.yaml --parallel --cached

# `make bench` builds first (package sizes); a build that cannot run (no python3.13) is reported, not fatal.
BENCH_ARGS ?=
bench: $(STAMP) ## benchmarks -> docs/performance.md (about 40 min on 2 shared cores; QUICK=1 for a short pass; BENCH_ARGS="--only warm")
	-@$(MAKE) --no-print-directory build
	PYTHONPATH=layers/paycore:. $(PY) -m bench $(if $(QUICK),--quick) $(BENCH_ARGS)

deploy: build ## sam deploy --config-env $(ENV) (dev or prod; needs AWS credentials)
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam deploy --config-env $(ENV)

seed: $(STAMP) ## write infra/seed/channels.json (or FILE=...) to a deployed stage: make seed TABLE=<ChannelsTableName>
	@test -n "$(TABLE)" || { echo "usage: make seed TABLE=<ChannelsTableName output> [FILE=infra/seed/<file>.json]"; exit 2; }
	PYTHONPATH=layers/paycore:. $(PY) -m infra.seed.channels --table $(TABLE) $(if $(FILE),--file $(FILE))

keys: $(RUN_STAMP) ## create/rotate identity keys of a stage: make keys STAGE=dev [ACTION=init|status|add|activate|retire|rotate-hmac|retire-hmac ARG=<kid or version>]
	@test -n "$(STAGE)" || { echo "usage: make keys STAGE=<stage> [ACTION=init] [ARG=<kid or version>] (docs/identity.md)"; exit 2; }
	PYTHONPATH=layers/paycore:. $(PY) -m infra.keys --stage $(STAGE) $(or $(ACTION),init) $(ARG)

SCENARIO ?= smoke
simulate: $(RUN_STAMP) ## drive a scenario's traffic and check the money: make simulate [SCENARIO=busy-day] [BASE_URL=...] [SIM_ARGS="--seed 7"]
	PYTHONPATH=layers/paycore:. $(PY) -m bench.simulator --scenario $(SCENARIO) $(if $(BASE_URL),--base-url $(BASE_URL)) $(SIM_ARGS)

clean: ## remove build output, caches and the virtualenv
	rm -rf .aws-sam .bench $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# ---------------------------------------------------------------- routing evaluation (docs/routing.md)
.PHONY: bench-routing bench-routing-tune bench-routing-sensitivity bench-routing-latency
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ENV   := PYTHONPATH=layers/paycore:.

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

bench-routing: $(BENCH_STAMP) ## offline routing evaluation, report seeds: docs/routing-results.md and docs/routing.png
	$(BENCH_ENV) $(PY) -m bench.routing report

bench-routing-tune: $(STAMP) ## router tuning grid on the tuning seeds: docs/routing-tuning.md
	$(BENCH_ENV) $(PY) -m bench.routing tune

bench-routing-sensitivity: $(STAMP) ## router gain against drift amplitude and traffic rate: docs/routing-sensitivity.md
	$(BENCH_ENV) $(PY) -m bench.routing sensitivity

bench-routing-latency: $(STAMP) ## DynamoDB requests and in-process latency of a routing decision: docs/routing-latency.md
	$(BENCH_ENV) $(PY) -m bench.routing.latency
