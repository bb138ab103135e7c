"""The redis_snapshots check: RDB snapshots in a store, read back with redis-check-rdb."""

from __future__ import annotations

import os
import time
from pathlib import Path

from checks.base import Status
from sandbox.redisserver import RedisServer
from tests.helpers import redis_harness, sample, write_keys


def test_snapshot_integrity(redis_server: RedisServer, tmp_path: Path) -> None:
    redis_server.start(save="3600 1")
    write_keys(redis_server, 2000)
    redis_server.client().save()
    good = (redis_server.dir / "dump.rdb").read_bytes()
    flipped = bytearray(good)
    flipped[-3] ^= 0xFF  # in the trailing CRC64: always a checksum error, wherever keys land
    store = tmp_path / "snapshots"
    store.mkdir()
    now = time.time()
    for age, (name, data) in enumerate(
        [
            ("c-flipped.rdb", bytes(flipped)),
            ("b-truncated.rdb", good[: len(good) // 2]),
            ("a-good.rdb", good),
        ]
    ):
        (store / name).write_bytes(data)
        os.utime(store / name, (now - age * 60, now - age * 60))
    harness = redis_harness(
        redis_server.url, tmp_path / "state", rpo="1h", snapshot_store=f"file://{store}/"
    )
    flipped_result = harness.run("redis_snapshots")
    assert sample(flipped_result, "drwatch_redis_snapshots") == 3
    assert sample(flipped_result, "drwatch_redis_snapshot_newest_verified") == 0
    assert flipped_result.status == Status.CRITICAL
    assert (
        "newest snapshot fails verification: redis-check-rdb: RDB CRC error"
        in flipped_result.summary
    )
    (store / "c-flipped.rdb").unlink()
    assert (
        sample(harness.run("redis_snapshots"), "drwatch_redis_snapshot_newest_verified") == 0
    )  # truncated
    (store / "b-truncated.rdb").unlink()
    verified = harness.run("redis_snapshots")
    assert sample(verified, "drwatch_redis_snapshot_newest_verified") == 1
    assert verified.status == Status.OK, verified.summary
