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
                                                   "expected_since": [["cache", "redis", 5.0]]}))  # fmt: skip
    engine = DrillEngine()
    engine.configure(_config(state))
    last, passed, since = engine.snapshot()
    assert last[("cache", "redis")].summary == "loaded"
    assert passed[("cache", "redis")].duration_seconds == 3
    assert since[("cache", "redis")] == 5.0


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
