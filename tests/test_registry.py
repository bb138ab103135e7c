"""The check registry: every check module is in it, a config with every section plans every
check, and a reload hands every check's state to its successor."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml

from checks.definition import CheckDef
from checks.registry import REGISTRY, definition
from core.config.loading import load_config
from exporter.daemon import Daemon
from exporter.runtime.jobs import build_jobs
from tests.helpers import every_section, make_config

ROOT = Path(__file__).resolve().parent.parent
NOT_CHECKS = {"__init__", "base", "definition", "registry"}


def _config(tmp_path: Path, **postgres: Any) -> dict[str, Any]:
    target = every_section(
        "db",
        "postgresql://drwatch@127.0.0.1:1/app",
        tmp_path / "dumps",
        tmp_path / "wal",
        "redis://127.0.0.1:1/0",
        tmp_path / "rdb",
        "app",
        tmp_path / "base",
        **postgres,
    )
    return {"targets": [target], "state_dir": str(tmp_path / "state")}


def test_every_check_module_declares_itself_and_is_registered() -> None:
    modules = sorted(p.stem for p in (ROOT / "checks").glob("*.py") if p.stem not in NOT_CHECKS)
    assert len(modules) >= 12
    for name in modules:
        module = importlib.import_module(f"checks.{name}")
        declared = getattr(module, "DEFINITION", None)
        assert isinstance(declared, CheckDef), f"checks/{name}.py declares no DEFINITION"
        assert declared in REGISTRY, f"checks/{name}.py is missing from checks/registry.py"
        assert definition(declared.name) is declared
    assert len({c.name for c in REGISTRY}) == len(REGISTRY) == len(modules)


def test_a_config_with_every_section_plans_every_check(tmp_path: Path) -> None:
    jobs, instances = build_jobs(make_config(**_config(tmp_path)).config)
    assert [job.check for job in jobs] == [check.name for check in REGISTRY]
    assert set(instances) == {("db", check.name) for check in REGISTRY}
    for job in jobs:
        declared = definition(job.check)
        # Base backups measure full_restore only where no dump store does.
        narrowed = () if job.check == "base_backups" else declared.scenarios
        assert job.scenarios == narrowed
        assert set(declared.metrics) <= set(job.metrics)
    replica_copy = next(job for job in jobs if job.check == "replica_copy")
    assert replica_copy.after == "backups"


def test_a_reload_hands_every_checks_state_to_its_successor(tmp_path: Path) -> None:
    path = tmp_path / "drwatch.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path)))
    daemon = Daemon(path, load_config(path), "127.0.0.1:0")
    try:
        before = daemon.checks()
        assert set(before) == {("db", check.name) for check in REGISTRY}
        states = {key: object() for key in before}
        for key, check in before.items():
            check.state = states[key]
        # A different config for every check: the checks are rebuilt, their state kept.
        path.write_text(yaml.safe_dump(_config(tmp_path, interval="7s")))
        assert daemon.reload()
        after = daemon.checks()
        assert set(after) == set(before)
        for key, check in after.items():
            assert check is not before[key], f"{key} was not rebuilt"
            assert check.state is states[key], f"{key} lost its state on reload"
    finally:
        daemon.stop()


def test_the_daemon_records_each_scenarios_exposure_every_minute(tmp_path: Path) -> None:
    """What the recorder thread does each minute, done once: every scenario's exposure (here
    unknown: no check has run) goes into state_dir, and the status page's 30 days come back
    from it, an unmeasured minute counted against the objective."""
    path = tmp_path / "drwatch.yml"
    path.write_text(yaml.safe_dump(_config(tmp_path)))
    daemon = Daemon(path, load_config(path), "127.0.0.1:0")
    daemon._record_exposures()
    assert (Path(daemon.current().config.state_dir) / "exposure-record.jsonl").exists()
    pitr = daemon.compliance()["db/pitr"]
    assert pitr["minutes_recorded"] == 1 and pitr["minutes_unknown"] == 1
    assert pitr["ratio"] == 0.0
