"""State files as untrusted input: a field more after an upgrade, valid JSON of the wrong shape,
garbage — set aside and rebuilt, never a crash at start or a check stuck UNKNOWN."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from checks.support.incremental import StateFile
from checks.support.stores import StoredObject
from checks.support.verdicts import VerdictCache
from checks.support.verify import Verdict
from exporter.drills.engine import DrillEngine
from exporter.drills.result import DrillResult
from tests.helpers import make_config


def _set_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.bad-*"))


def _config(state: Path):  # type: ignore[no-untyped-def]
    target = {"name": "cache", "redis": {"url": "redis://127.0.0.1:1/0",
              "snapshot_store": f"file://{state}/"}, "drills": {"schedule": "0 3 * * 0",
              "redis": {}}}  # fmt: skip
    return make_config([target], state_dir=str(state)).config


def test_drills_state_of_the_wrong_shape_is_set_aside_not_a_crash(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    drills = state / "drills.json"
    for bad in ("[]", '{"last": [{"target": 1}]}', "not json", '{"last": "x"}'):
        drills.write_text(bad)
        engine = DrillEngine()
        engine.configure(_config(state))  # the daemon's start: must not raise
        assert engine.snapshot()[0] == {}
        assert not drills.exists() or json.loads(drills.read_text())["last"] == []
    assert len(_set_aside(drills)) >= 1


def test_drills_state_from_a_newer_drwatch_keeps_its_results(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    result = asdict(
        DrillResult("cache", "redis", 1.0e9, ok=True, summary="loaded", duration_seconds=3)
    )
    result["a_field_of_a_newer_version"] = {"x": 1}
    (state / "drills.json").write_text(json.dumps({"last": [result], "last_success": [result],
                                                   "expected_since": [["cache", "redis", 1.5e9]]}))  # fmt: skip
    engine = DrillEngine()
    engine.configure(_config(state))
    last, passed, since = engine.snapshot()
    assert last[("cache", "redis")].summary == "loaded"
    assert passed[("cache", "redis")].duration_seconds == 3
    assert since[("cache", "redis")] == 1.5e9


def test_a_verdict_file_of_the_wrong_shape_means_verify_again(tmp_path: Path) -> None:
    path = tmp_path / "verdicts.json"
    obj = StoredObject("a.dump", 10, 0.0, "etag")
    good = VerdictCache(path)
    good.put(obj, Verdict(True, "ok", 3, 10, 0.1))
    good.retain({"a.dump"})
    assert VerdictCache(path).get(obj) is not None
    path.write_text(json.dumps({"a.dump": {"identity": "etag:10", "ok": "yes please"}}))
    assert VerdictCache(path).get(obj) is None  # never trusted: verified again
    assert _set_aside(path)
    path.write_text("[1, 2]")
    assert VerdictCache(path).get(obj) is None


def test_verification_state_of_the_wrong_shape_means_a_full_sweep(tmp_path: Path) -> None:
    path = tmp_path / "verification.json"
    path.write_text(json.dumps({"orphans:debate_messages": 5}))
    kept = StateFile(path)
    assert kept.item("orphans:debate_messages") == {}  # nothing kept: the next run sweeps
    assert _set_aside(path)


def test_a_pass_no_drill_could_have_had_is_not_a_pass(tmp_path: Path) -> None:
    """drills.json of the right types with impossible values (started far in the future, a
    negative duration): set aside, not read as the last success."""
    state = tmp_path / "state"
    state.mkdir()
    good = asdict(DrillResult("cache", "redis", 1796000000.0, ok=True, duration_seconds=12.0))
    for field, value in (("started_at", 1e300), ("duration_seconds", -5.0),
                         ("started_at", 100.0)):  # fmt: skip
        (state / "drills.json").write_text(json.dumps({"last_success": [{**good, field: value}]}))
        engine = DrillEngine()
        engine.configure(_config(state))
        assert engine.snapshot()[1] == {}, (field, value)
    assert len(_set_aside(state / "drills.json")) >= 1


def test_state_files_are_drwatchs_alone(tmp_path: Path) -> None:
    """drills.json, verdicts and verification state: mode 0600 like the rest of state_dir."""
    state = tmp_path / "state"
    engine = DrillEngine()
    engine.configure(_config(state))  # writes drills.json
    cache = VerdictCache(state / "verdicts-db.json")
    cache.put(StoredObject("a.dump", 1, 0.0), Verdict(True, "ok", 1, 1, 0.1))
    cache.retain({"a.dump"})
    verification = StateFile(state / "verification-db.json")
    verification.item("x")["n"] = 1
    verification.save({"x"})
    for name in ("drills.json", "verdicts-db.json", "verification-db.json"):
        assert (state / name).stat().st_mode & 0o777 == 0o600, name


def test_a_read_only_state_dir_costs_memory_not_the_daemon(tmp_path: Path) -> None:
    """drwatch started on a read-only state_dir (drills on a staging server too): it serves,
    says so (drwatch_state_writable 0, once in the log), and leaves no temporary file."""
    import subprocess

    from sandbox.pgcluster import wait_until
    from tests.daemon import DaemonProcess
    from tests.helpers import write_config

    state = tmp_path / "state"
    state.mkdir()
    store = tmp_path / "store"
    store.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(state)]).returncode:
        import pytest

        pytest.skip("mounting a tmpfs needs root")
    try:
        config = write_config(tmp_path / "c.yml", [{
            "name": "app", "backups": {"store": f"file://{store}/"},
            "drills": {"full_restore": {}, "run_at_start": True,
                       "scratch": {"dsn": "postgresql://postgres@127.0.0.1:1/postgres"}},
        }], state_dir=str(state))  # fmt: skip
        daemon = DaemonProcess(config, tmp_path)
        try:
            wait_until(lambda: daemon.value("drwatch_state_writable") == 0, 30, what="said")
            wait_until(
                lambda: daemon.value("drwatch_drill_success", target="app",
                                     scenario="full_restore") == 0, 60, what="the drill ran",
            )  # fmt: skip
            assert daemon.value("drwatch_check_up", check="backups", target="app") == 1
            assert daemon.log().count("state_dir not writable") == 1
            assert "Traceback" not in daemon.log()
        finally:
            assert daemon.stop() == 0
        assert list(state.iterdir()) == []
    finally:
        subprocess.run(["umount", "--lazy", str(state)], check=False)
