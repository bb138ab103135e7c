# `make run` and `make test` install whatever is missing, then do their job.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)


.PHONY: run run-alerting test lint docs rules dashboards bench system-deps clean

system-deps:
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: system-deps $(STAMP)
	$(VENV)/bin/python -m sandbox.run

run-alerting: system-deps $(STAMP)
	$(VENV)/bin/python -m sandbox.run --alerting

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

test: system-deps $(STAMP) lint
	$(VENV)/bin/pytest

docs: $(STAMP)
	$(VENV)/bin/python -m docs.metricsdoc

rules: $(STAMP)
	$(VENV)/bin/python -m alerts.prometheusrule > deploy/kubernetes/base/prometheusrule.yaml

dashboards: $(STAMP)
	$(VENV)/bin/python -m dashboards.build

bench: system-deps $(STAMP)
	$(VENV)/bin/python bench/verification_queries.py
	$(VENV)/bin/python bench/backup_analysis.py
	$(VENV)/bin/python bench/remediation.py
	$(VENV)/bin/python bench/http_scrapes.py --targets 1
	$(VENV)/bin/python bench/http_scrapes.py --targets 50
	$(VENV)/bin/python bench/fleet.py --targets 50 200 500
	$(VENV)/bin/python bench/backup_layouts.py
	$(VENV)/bin/python bench/verification_cost.py
	$(VENV)/bin/python bench/drill.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
