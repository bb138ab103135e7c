"""The redis drill: the newest RDB snapshot loaded into a scratch redis-server, keys counted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from exporter.drills import redis as redis_drill
from sandbox.redisserver import RedisServer
from tests.helpers import make_config, reachable, write_keys


def _scratch(state: Path) -> dict[str, str]:
    """The scratch server's OS user (drwatch runs as root here) and a directory it reaches."""
    (state / "drills").mkdir(parents=True, exist_ok=True)
    reachable(state / "drills")
    return {"user": "postgres", "dir": str(state / "drills")}


def _run(snapshots: Path, state: Path, **redis: object):  # type: ignore[no-untyped-def]
    cache = {"url": "redis://127.0.0.1:1/0", "snapshot_store": f"file://{snapshots}/", **redis}
    loaded = make_config(
        [
            {
                "name": "cache",
                "redis": cache,
                "objectives": {"redis": {"rpo": "1h"}},
                "drills": {"schedule": "0 3 * * 0", "redis": {}, "scratch": _scratch(state)},
            }
        ],
        state_dir=str(state),
    )
    config = loaded.config
    assert config.targets[0].drill_scenarios() == ["redis"]
    return redis_drill.run(config, config.targets[0], time.monotonic() + 60)


def test_the_newest_snapshot_loads_with_every_key(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(save="3600 1")
    write_keys(redis_server, 2000)
    redis_server.client().save()
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "cache-1.rdb").write_bytes((redis_server.dir / "dump.rdb").read_bytes())
    result = _run(snapshots, tmp_path / "state")
    assert result.ok, result.summary
    assert result.values["keys_loaded"] == result.values["keys_expected"] == 2000
    assert set(result.phases) == {"download", "restore", "verify"}
    assert not list((tmp_path / "state" / "drills").iterdir()), "scratch left behind"


def test_the_heartbeat_key_measures_what_the_snapshot_loses(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """drwatch's heartbeat key, set as the daemon sets it, then a snapshot; production's key
    moves on 30 s, then 2 h: the loaded snapshot loses 30 s (within the 1 h RPO), then 2 h, over
    it, and the drill fails saying so."""
    from core.config.redis import RedisConfig, RedisHeartbeatConfig
    from exporter.drills.heartbeat import HeartbeatWriter

    redis_server.start(save="3600 1")
    write_keys(redis_server, 100)
    cache = RedisConfig.model_validate({"url": redis_server.url})
    writer = HeartbeatWriter("cache")
    writer.write_redis(cache, RedisHeartbeatConfig())
    written = float(redis_server.client().get("drwatch:heartbeat"))
    assert writer.last_write == pytest.approx(written, abs=0.001)
    redis_server.client().save()
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "cache-1.rdb").write_bytes((redis_server.dir / "dump.rdb").read_bytes())
    losses = []
    for later in (30.0, 7200.0):
        redis_server.client().set("drwatch:heartbeat", f"{written + later:.3f}")
        result = _run(snapshots, tmp_path / f"state-{later:.0f}", url=redis_server.url,
                      heartbeat={"interval": "15s"})  # fmt: skip
        losses.append((result.ok, result.values.get("measured_data_loss_seconds"), result.summary))
    assert losses[0][:2] == (True, 30.0), losses[0]
    assert losses[1][:2] == (False, 7200.0), losses[1]
    assert "measured data loss 2h" in losses[1][2] and "over the 1h RPO objective" in losses[1][2]


def test_a_truncated_snapshot_fails(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.start(save="3600 1")
    write_keys(redis_server, 500)
    redis_server.client().save()
    data = (redis_server.dir / "dump.rdb").read_bytes()
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "cache-1.rdb").write_bytes(data[: len(data) // 2])
    result = _run(snapshots, tmp_path / "state")
    assert not result.ok and result.summary.startswith("the snapshot does not read")


def test_a_missing_program_is_a_failed_drill_everywhere(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """No redis-server on the PATH: a failed drill naming the program and its package, in the
    CLI's JSON and exit code and in the engine's record, not a traceback and "no drill yet"."""
    import json
    import os
    import sys

    import yaml

    from exporter.drills.engine import DrillEngine
    from exporter.drills.status import drill_rows
    from tests.helpers import drwatch

    redis_server.start(save="3600 1")
    write_keys(redis_server, 10)
    redis_server.client().save()
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "cache-1.rdb").write_bytes((redis_server.dir / "dump.rdb").read_bytes())
    doc = {
        "state_dir": str(tmp_path / "state"),
        "targets": [{
            "name": "cache",
            "redis": {"url": "redis://127.0.0.1:1/0", "snapshot_store": f"file://{snapshots}/"},
            "drills": {"schedule": "0 3 * * 0", "redis": {},
                       "scratch": _scratch(tmp_path / "state")},
        }],
    }  # fmt: skip
    config_file = tmp_path / "drwatch.yml"
    config_file.write_text(yaml.safe_dump(doc))
    import shutil

    empty = tmp_path / "bin"  # redis-check-rdb verifies the snapshot; redis-server is missing
    empty.mkdir()
    (empty / "redis-check-rdb").symlink_to(shutil.which("redis-check-rdb") or "redis-check-rdb")
    env = {**os.environ, "PATH": str(empty)}
    proc = drwatch("drill", "--config", str(config_file), "--format", "json", env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    drill = json.loads(proc.stdout)["drills"][0]
    assert drill["status"] == "CRITICAL"
    assert drill["summary"] == (
        "drill could not run: cannot run redis-server: not installed (Debian package redis-server)"
    )
    assert drill["rto_measured_seconds"] is None
    table = drwatch("drill", "--config", str(config_file), env=env, timeout=120)
    row = table.stdout.splitlines()[1].split()
    assert row[:4] == ["cache", "redis", "CRITICAL", "-"]  # no RTO for a drill that failed

    # In the daemon's engine: recorded as a failed drill, shown so on the page's rows.
    loaded = make_config(doc["targets"], state_dir=doc["state_dir"])
    engine = DrillEngine()
    engine.configure(loaded.config)
    path = os.environ["PATH"]
    os.environ["PATH"] = str(empty)
    try:
        engine.run(loaded.config, loaded.config.targets[0])
    finally:
        os.environ["PATH"] = path
    row_doc = drill_rows(engine, loaded.config)[0]
    assert row_doc["status"] == "CRITICAL" and "redis-server: not installed" in row_doc["summary"]
    assert sys.executable  # the CLI ran under this interpreter, PATH or not


def test_drill_of_a_scenario_not_configured_says_so(tmp_path: Path) -> None:
    import yaml

    from tests.helpers import drwatch

    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    target = {"name": "cache", "redis": {"url": "redis://127.0.0.1:1/0",
              "snapshot_store": f"file://{snapshots}/"},
              "drills": {"schedule": "0 3 * * 0", "redis": {}}}  # fmt: skip
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump({"targets": [target], "state_dir": str(tmp_path / "s")}))
    proc = drwatch("drill", "--config", str(config), "--scenario", "pitr")
    assert proc.returncode == 3
    assert proc.stdout == ""  # no bare table header
    assert "no pitr drill is configured for any target" in proc.stderr
