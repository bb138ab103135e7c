"""The redis_persistence check against real Redis servers: saves, restarts, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checks.base import Status
from sandbox.pgcluster import wait_until
from sandbox.redisserver import RedisServer
from tests.helpers import redis_harness, sample, write_config, write_keys


def _bgsave_done(redis_server: RedisServer, after: int) -> bool:
    info = redis_server.client().info("persistence")
    return info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_save_time"] >= after


def test_bgsave_zeroes_exposure_and_later_writes_grow_it(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(save="3600 1")
    harness = redis_harness(redis_server.url, tmp_path)
    write_keys(redis_server)
    time.sleep(1.1)  # so the save below is later than the start, to the second
    before = int(time.time())
    redis_server.client().bgsave()
    wait_until(lambda: _bgsave_done(redis_server, before), 10, what="bgsave")
    saved = harness.run("redis_persistence")
    assert saved.up, saved.summary
    assert saved.exposures["redis"] == 0
    last_save = sample(saved, "drwatch_redis_last_save_timestamp_seconds")
    assert last_save is not None and last_save >= before
    assert sample(saved, "drwatch_redis_persistence_configured") == 1
    assert saved.status == Status.OK, saved.summary

    write_keys(redis_server)
    first = harness.run("redis_persistence").exposures["redis"]
    time.sleep(1.0)
    later = harness.run("redis_persistence")
    assert 0 < first < later.exposures["redis"]
    assert later.exposures["redis"] == pytest.approx(time.time() - last_save, abs=1.5)


def test_persistence_off_and_restarted_is_not_backed_up(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(save="")
    write_keys(redis_server)
    redis_server.restart(save="")
    write_keys(redis_server)
    harness = redis_harness(redis_server.url, tmp_path)
    result = harness.run("redis_persistence")
    assert (
        sample(result, "drwatch_redis_last_save_timestamp_seconds") is None
    )  # the start is no save
    assert sample(result, "drwatch_redis_saves") == 0
    assert sample(result, "drwatch_redis_persistence_configured") == 0
    assert "persistence is off" in result.summary and "no save since the start" in result.summary
    time.sleep(1.0)
    grown = harness.run("redis_persistence")
    assert grown.exposures["redis"] > result.exposures["redis"] > 0


def test_failed_bgsave_is_critical_and_keeps_the_true_last_save(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.start(save="3600 1")
    write_keys(redis_server)
    time.sleep(1.1)
    before = int(time.time())
    redis_server.client().bgsave()
    wait_until(lambda: _bgsave_done(redis_server, before), 10, what="first bgsave")
    good_save = redis_server.client().info("persistence")["rdb_last_save_time"]
    harness = redis_harness(redis_server.url, tmp_path)
    assert (
        sample(harness.run("redis_persistence"), "drwatch_redis_last_save_timestamp_seconds")
        == good_save
    )
    os.chmod(
        redis_server.dir, 0o500
    )  # the server runs as an unprivileged user: it cannot write here
    try:
        write_keys(redis_server)
        redis_server.client().bgsave()
        wait_until(
            lambda: redis_server.client().info("persistence")["rdb_last_bgsave_status"] == "err",
            10,
            what="bgsave error",
        )
        result = harness.run("redis_persistence")
        assert sample(result, "drwatch_redis_last_bgsave_ok") == 0
        assert sample(result, "drwatch_redis_last_save_timestamp_seconds") == good_save
        assert result.status == Status.CRITICAL
        assert "the last background save failed" in result.summary
        config = write_config(
            tmp_path / "c.yml",
            [{"name": "cache", "redis": {"url": redis_server.url}}],
            state_dir=str(tmp_path),
        )
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter",
                "check",
                "--config",
                str(config),
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        row = next(
            r for r in json.loads(proc.stdout)["results"] if r["check"] == "redis_persistence"
        )
        assert row["status"] == "CRITICAL"
    finally:
        os.chmod(redis_server.dir, 0o755)


def test_config_command_forbidden_means_unknown_not_failed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # As on ElastiCache and hardened servers: CONFIG is not available to drwatch.
    redis_server.start("--rename-command", "CONFIG", "")
    result = redis_harness(redis_server.url, tmp_path).run("redis_persistence")
    assert result.up and result.status == Status.OK, result.summary
    assert sample(result, "drwatch_redis_persistence_configured") is None
    assert result.values["persistence_configured"] == "unknown"
