# Every target runs inside .venv, which `make install` creates from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPEC ?=

# `make demo` needs the package and its runtime dependencies only, not the toolchain above.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed

BENCH_VENV := .venv-bench
LOWEST_VENV := .venv-lowest
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install prism demo docs gen check-gen check-revisions curate validate-spec lint typecheck pytest test test-lowest fuzz bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

## Stoplight Prism, pinned by tools/prism/package-lock.json, for tests/spec/test_prism_conformance.py.
prism:
	SCARF_ANALYTICS=false npm ci --prefix tools/prism --no-audit --no-fund --loglevel=error

## A tour of the CLI against a fake Klaviyo on 127.0.0.1: no account, no network. It runs in
## its own light $(DEMO_VENV) (the package, no extras: seconds to install), not in .venv.
demo: $(DEMO_STAMP)
	PY=$(DEMO_VENV)/bin/python bash scripts/demo.sh

# python3's own pip, if it has one that takes --python (22.3+), installs into a venv made
# without pip: ensurepip (pip and setuptools into the venv) would take most of the time.
# Otherwise the venv gets a pip of its own.
DEMO_PIP := install -q --disable-pip-version-check -e .
$(DEMO_STAMP): pyproject.toml
	rm -rf $(DEMO_VENV)
	$(PYTHON) -m venv --without-pip $(DEMO_VENV)
	if $(PYTHON) -m pip --python $(DEMO_VENV)/bin/python --version >/dev/null 2>&1; then \
	  $(PYTHON) -m pip --python $(DEMO_VENV)/bin/python $(DEMO_PIP); \
	else \
	  $(DEMO_VENV)/bin/python -m ensurepip >/dev/null && $(DEMO_VENV)/bin/python -m pip $(DEMO_PIP); \
	fi
	touch $(DEMO_STAMP)

## Regenerate generated/klaviyo_catalog_api from openapi/klaviyo-catalog-jobs.yaml.
gen: $(STAMP)
	$(BIN)/python scripts/generate.py

## Fail if the committed generated package differs from a fresh generation.
check-gen: $(STAMP)
	$(BIN)/python scripts/generate.py --check

## Curate a new revision: make curate SPEC=path/or/url/of/klaviyo/openapi.json
curate: $(STAMP)
	@test -n "$(SPEC)" || { echo "usage: make curate SPEC=<path or URL of Klaviyo's spec>"; exit 2; }
	$(BIN)/python scripts/curate.py "$(SPEC)" -o openapi/klaviyo-catalog-jobs.yaml --update-floor

## Every published revision in $(REVISIONS_DIR): curate, generate, import, mypy --strict, and the
## facade's tests on the oldest, the seeds' and the newest (see scripts/check_revisions.py);
## and the README's table of revisions is current for the day it states.
REVISIONS_DIR ?= ../shared/klaviyo-openapi/revisions
check-revisions: $(STAMP)
	$(BIN)/python scripts/check_revisions.py --specs $(REVISIONS_DIR) --jobs 2
	$(BIN)/python scripts/revision_table.py --specs $(REVISIONS_DIR) --check

validate-spec: $(STAMP)
	$(BIN)/openapi-spec-validator openapi/klaviyo-catalog-jobs.yaml

lint: $(STAMP)
	$(BIN)/ruff check facade scripts tests examples
	$(BIN)/ruff format --check facade scripts tests examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict facade/klaviyo_catalog scripts tests examples
	$(BIN)/pyright
	$(BIN)/mypy --strict generated/klaviyo_catalog_api

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

## The API reference and guides, into site/ (warnings are errors).
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

## The test command: spec validation, regeneration diff, lint, types (the examples with pyright
## too), tests, and the docs build.
test: validate-spec check-gen lint typecheck pytest docs

## The tests again, with the lowest versions of the runtime dependencies that pyproject.toml
## allows (scripts/lowest_deps.py), in a fresh $(LOWEST_VENV): proves the lower bounds true.
test-lowest:
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(PYTHON) scripts/lowest_deps.py > $(LOWEST_VENV)/constraints.txt
	$(LOWEST_VENV)/bin/python -m pip install -q -c $(LOWEST_VENV)/constraints.txt -e '.[dev]'
	$(LOWEST_VENV)/bin/python scripts/lowest_deps.py --check
	$(LOWEST_VENV)/bin/python -m pytest -q

## Long fuzzing run: 50x the CI profile's examples and Prism rounds (see RELIABILITY.md).
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q tests/hostile/test_fuzz.py tests/hostile/test_security.py \
	  tests/spec/test_prism_conformance.py

## The benchmark-only environment: the official SDK and pyinstrument live here, never in .venv.
$(BENCH_STAMP): pyproject.toml requirements-bench.txt
	test -d $(BENCH_VENV) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r requirements-bench.txt -e '.[redis,speedups]'
	touch $(BENCH_STAMP)

## Facade vs httpx+json vs klaviyo-api against FakeKlaviyo (about 15 minutes); writes BENCHMARKS.md.
bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python scripts/bench.py

## CI's smoke run: every section at tiny sizes, about a minute (the SDK only if .venv-bench
## exists); writes nothing, exits non-zero if a section fails.
bench-quick: $(STAMP)
	$(BIN)/python scripts/bench.py --quick

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(BENCH_VENV) $(LOWEST_VENV) site .mypy_cache .ruff_cache .pytest_cache .hypothesis dist build
