"""Redis persistence, replication and snapshots against real redis-server processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import Status
from sandbox.pgcluster import free_port, wait_until
from sandbox.redisserver import RedisServer
from tests.conftest import make_config, write_config
from tests.helpers import CheckHarness, sample


@pytest.fixture
def server() -> Iterator[RedisServer]:
    r = RedisServer()
    try:
        yield r
    finally:
        r.destroy()


def _harness(url: str, tmp_path: Path, rpo: str = "2s", **redis: object) -> CheckHarness:
    return CheckHarness(
        make_config(
            [
                {
                    "name": "cache",
                    "objectives": {"redis": {"rpo": rpo}},
                    "redis": {"url": url, **redis},
                }
            ],
            state_dir=str(tmp_path),
        )
    )


def _write(server: RedisServer, n: int = 10) -> None:
    client = server.client()
    for i in range(n):
        client.set(f"key{i}", time.time())


def _bgsave_done(server: RedisServer, after: int) -> bool:
    info = server.client().info("persistence")
    return info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_save_time"] >= after


def test_bgsave_zeroes_exposure_and_later_writes_grow_it(
    server: RedisServer, tmp_path: Path
) -> None:
    server.start(save="3600 1")
    harness = _harness(server.url, tmp_path)
    _write(server)
    time.sleep(1.1)  # so the save below is later than the start, to the second
    before = int(time.time())
    server.client().bgsave()
    wait_until(lambda: _bgsave_done(server, before), 10, what="bgsave")
    saved = harness.run("redis_persistence")
    assert saved.up, saved.summary
    assert saved.exposures["redis"] == 0
    last_save = sample(saved, "drwatch_redis_last_save_timestamp_seconds")
    assert last_save is not None and last_save >= before
    assert sample(saved, "drwatch_redis_persistence_configured") == 1
    assert saved.status == Status.OK, saved.summary

    _write(server)
    first = harness.run("redis_persistence").exposures["redis"]
    time.sleep(1.0)
    later = harness.run("redis_persistence")
    assert 0 < first < later.exposures["redis"]
    assert later.exposures["redis"] == pytest.approx(time.time() - last_save, abs=1.5)


def test_persistence_off_and_restarted_is_not_backed_up(
    server: RedisServer, tmp_path: Path
) -> None:
    server.start(save="")
    _write(server)
    server.restart(save="")
    _write(server)
    harness = _harness(server.url, tmp_path)
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
    server: RedisServer, tmp_path: Path
) -> None:
    server.start(save="3600 1")
    _write(server)
    time.sleep(1.1)
    before = int(time.time())
    server.client().bgsave()
    wait_until(lambda: _bgsave_done(server, before), 10, what="first bgsave")
    good_save = server.client().info("persistence")["rdb_last_save_time"]
    harness = _harness(server.url, tmp_path)
    assert (
        sample(harness.run("redis_persistence"), "drwatch_redis_last_save_timestamp_seconds")
        == good_save
    )
    os.chmod(server.dir, 0o500)  # the server runs as an unprivileged user: it cannot write here
    try:
        _write(server)
        server.client().bgsave()
        wait_until(
            lambda: server.client().info("persistence")["rdb_last_bgsave_status"] == "err",
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
            [{"name": "cache", "redis": {"url": server.url}}],
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
        os.chmod(server.dir, 0o755)


def test_replication_and_a_lost_primary(server: RedisServer, tmp_path: Path) -> None:
    server.start()
    replica = RedisServer().start("--replicaof", "127.0.0.1", str(server.port))
    try:
        wait_until(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            20,
            what="link up",
        )
        wait_until(
            lambda: server.client().info("replication")["connected_slaves"] == 1,
            20,
            what="replica seen",
        )
        primary = _harness(server.url, tmp_path).run("redis_replication")
        assert primary.values["role"] == "master"
        assert sample(primary, "drwatch_redis_connected_replicas") == 1
        name = f"127.0.0.1:{replica.port}"
        assert sample(primary, "drwatch_redis_replica_lag_seconds", replica=name) is not None
        assert sample(primary, "drwatch_redis_replica_offset_lag_bytes", replica=name) is not None

        on_replica = _harness(replica.url, tmp_path)
        up = on_replica.run("redis_replication")
        assert up.values["role"] == "slave" and sample(up, "drwatch_redis_master_link_up") == 1
        server.stop()
        wait_until(
            lambda: on_replica.run("redis_replication").values["master_link_up"] is False,
            20,
            what="link down",
        )
        time.sleep(1.5)
        down = on_replica.run("redis_replication")
        assert sample(down, "drwatch_redis_master_link_up") == 0
        assert sample(down, "drwatch_redis_master_link_down_seconds") >= 1
        assert down.status == Status.CRITICAL and "link down for" in down.summary
    finally:
        replica.destroy()


def test_snapshot_integrity(server: RedisServer, tmp_path: Path) -> None:
    server.start(save="3600 1")
    _write(server, 2000)
    server.client().save()
    good = (server.dir / "dump.rdb").read_bytes()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
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
    harness = _harness(server.url, tmp_path / "state", rpo="1h", snapshot_store=f"file://{store}/")
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


def test_redis_down_or_silent_then_back(tmp_path: Path) -> None:
    port = free_port()
    harness = _harness(f"redis://127.0.0.1:{port}/0", tmp_path, timeout="1s")
    down = harness.run("redis_persistence")
    assert not down.up and down.error_reasons == ("connect",) and "cannot connect" in down.summary
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        started = time.monotonic()
        hung = harness.run("redis_persistence")
        assert time.monotonic() - started < 3
        assert not hung.up and hung.error_reasons == ("timeout",), hung.summary
    back = RedisServer(port=port).start()
    try:
        assert harness.run("redis_persistence").up
    finally:
        back.destroy()


def test_wrong_password_is_a_permission_error_without_the_secret(
    server: RedisServer, tmp_path: Path
) -> None:
    server.start(password="the-right-one")
    secret = "Wr0ng-redis-s3cret"
    result = _harness(f"redis://:{secret}@127.0.0.1:{server.port}/0", tmp_path).run(
        "redis_persistence"
    )
    assert not result.up and result.error_reasons == ("permission",)
    assert secret not in result.summary
    ok = _harness(server.url, tmp_path, password="the-right-one").run("redis_persistence")
    assert ok.up, ok.summary


def test_config_command_forbidden_means_unknown_not_failed(
    server: RedisServer, tmp_path: Path
) -> None:
    # As on ElastiCache and hardened servers: CONFIG is not available to drwatch.
    server.start("--rename-command", "CONFIG", "")
    result = _harness(server.url, tmp_path).run("redis_persistence")
    assert result.up and result.status == Status.OK, result.summary
    assert sample(result, "drwatch_redis_persistence_configured") is None
    assert result.values["persistence_configured"] == "unknown"
