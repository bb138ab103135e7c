# `make run` and `make test` install whatever is missing, then do their job.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# The oldest Python pyproject.toml allows, as the most common server has it: Debian 12's 3.11.2.
FLOOR_PYTHON ?= /usr/bin/python3
FLOOR_VENV ?= .venv-floor
FLOOR_STAMP := $(FLOOR_VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
# barman, as its users install it (PyPI, under Debian's Python, which its server user can run):
# the pitr drill's tests restore with `barman recover` and fetch WAL with `barman get-wal`.
BARMAN_VERSION := 3.19.1
BARMAN_VENV ?= .venv-barman
BARMAN_STAMP := $(BARMAN_VENV)/.installed-$(BARMAN_VERSION)
# What unpacks, decompresses, restores and verifies: where the standard library moved (tarfile's
# extraction filters arrived in 3.11.4). The pitr drill's own tests (the backup tools' restore
# paths, two minutes) run under the newest Python only: its unpacking is test_tarballs' and
# test_base_backups', its sandboxing test_drill_redis's, all here; the full_restore drill's own
# tests too (what they exercise of the standard library is test_plain_restore's and
# test_tarballs').
FLOOR_TESTS := tests/test_tarballs.py tests/test_compression.py tests/test_base_backups.py \
	tests/test_drill_redis.py tests/test_plain_restore.py \
	tests/test_verify.py tests/test_timelines_real.py tests/test_drill_cross_region.py \
	tests/test_backups_running.py


.PHONY: run run-alerting test test-floor lint docs rules dashboards bench system-deps clean

system-deps:
	@scripts/install-system-deps.sh

# Two jobs: barman's venv and lint go on while the project's venvs install (one after the
# other: both install this checkout in editable mode, which writes its metadata here).
MAKEFLAGS += -j2

$(STAMP): pyproject.toml | system-deps
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

$(BARMAN_STAMP): | system-deps
	rm -rf $(BARMAN_VENV)
	$(FLOOR_PYTHON) -m venv $(BARMAN_VENV)
	$(BARMAN_VENV)/bin/pip install -q --disable-pip-version-check 'barman==$(BARMAN_VERSION)'
	touch $(BARMAN_STAMP)

$(FLOOR_STAMP): pyproject.toml | system-deps $(STAMP)
	rm -rf $(FLOOR_VENV)
	$(FLOOR_PYTHON) -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(FLOOR_STAMP)

run: system-deps $(STAMP)
	$(VENV)/bin/python -m sandbox.run

run-alerting: system-deps $(STAMP)
	$(VENV)/bin/python -m sandbox.run --alerting

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile

# The floor venv first: a test runs drwatch as a plain user with Debian's interpreter.
test: system-deps $(STAMP) $(FLOOR_STAMP) $(BARMAN_STAMP) lint
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory test-floor

test-floor: system-deps $(FLOOR_STAMP)
	$(FLOOR_VENV)/bin/python --version
	$(FLOOR_VENV)/bin/pytest $(FLOOR_TESTS)

docs: $(STAMP)
	$(VENV)/bin/python -m docs.metricsdoc

rules: $(STAMP)
	$(VENV)/bin/python -m alerts.slo > alerts/slo.yml
	$(VENV)/bin/python -m alerts.prometheusrule > deploy/kubernetes/base/prometheusrule.yaml

dashboards: $(STAMP)
	$(VENV)/bin/python -m dashboards.build

bench: system-deps $(STAMP)
	$(VENV)/bin/python bench/verification_queries.py
	$(VENV)/bin/python bench/backup_analysis.py
	$(VENV)/bin/python bench/remediation.py
	$(VENV)/bin/python bench/http_scrapes.py --targets 1
	$(VENV)/bin/python bench/http_scrapes.py --targets 50
	$(VENV)/bin/python bench/fleet.py --targets 500 1000 2000 --idle
	$(VENV)/bin/python bench/backup_layouts.py
	$(VENV)/bin/python bench/verification_cost.py
	$(VENV)/bin/python bench/drill.py
	$(VENV)/bin/python bench/tool_drill.py
	$(VENV)/bin/python bench/decompression.py
	$(VENV)/bin/python bench/auth_flood.py --attackers 300

clean:
	rm -rf $(VENV) $(FLOOR_VENV) .mypy_cache .pytest_cache .ruff_cache
