"""The redis drill: the newest RDB snapshot loaded into a scratch redis-server, keys counted."""

from __future__ import annotations

import time
from pathlib import Path

from exporter.drills import redis as redis_drill
from sandbox.redisserver import RedisServer
from tests.helpers import make_config, write_keys


def _run(snapshots: Path, state: Path):  # type: ignore[no-untyped-def]
    loaded = make_config(
        [
            {
                "name": "cache",
                "redis": {"url": "redis://127.0.0.1:1/0", "snapshot_store": f"file://{snapshots}/"},
                "drills": {"schedule": "0 3 * * 0", "redis": {}},
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
