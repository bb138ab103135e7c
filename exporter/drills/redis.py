"""The `redis` drill: the newest RDB snapshot loaded into a scratch redis-server on loopback, its
keys counted against what the snapshot holds (redis-check-rdb reads every record), timed."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis as redis_client

from checks.support.stores import listed_backups, open_store
from core.config.schema import Config, Target
from core.humanize import format_bytes
from core.programs import REDIS_CHECK_RDB, REDIS_SERVER, child_env, program_path
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import (
    DRILL_FAILURES,
    DrillError,
    new_scratch_dir,
    require_space,
    track,
)

SCENARIO = "redis"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, cache = target.drills, target.redis
    assert drills is not None and cache is not None and cache.snapshot_store
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    workdir = new_scratch_dir(drills.scratch, config.state_dir, "rdb-")
    try:
        store = open_store(cache.snapshot_store, config.aws)
        snapshots = listed_backups(store, cache.snapshot_patterns)
        if not snapshots:
            raise DrillError(f"no snapshot in {store.url} to load")
        newest = snapshots[-1]
        timer.result.values.update(backup=newest.key, backup_bytes=newest.size)
        timer.result.sizes = [(s.modified, s.size) for s in snapshots]
        require_space(workdir, newest.size, drills.scratch.disk_factor)
        with timer.phase("download"), open(workdir / "dump.rdb", "wb") as sink:
            for block in store.chunks(newest.key):
                sink.write(block)
                timer.remaining()
        expected = _keys_in(workdir / "dump.rdb", timer)
        with timer.phase("restore"):
            server, port = _start(workdir, timer)
        try:
            with timer.phase("verify"):
                loaded = _key_count(port, timer)
        finally:
            server.close()
        timer.result.values.update(keys_expected=expected, keys_loaded=loaded)
        summary = f"loaded {newest.key} ({format_bytes(newest.size)}): {loaded} keys"
        if loaded != expected:
            return timer.finish(False, f"{summary}, the snapshot holds {expected}")
        return timer.finish(True, summary)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _keys_in(rdb: Path, timer: Timer) -> int:
    """The keys the snapshot holds, as redis-check-rdb counts them reading every record."""
    proc = subprocess.run(
        [program_path(REDIS_CHECK_RDB.name), str(rdb)], capture_output=True, text=True,
        timeout=timer.remaining(), env=child_env(),
    )  # fmt: skip
    match = re.search(r"\[info\] (\d+) keys read", proc.stdout)
    if proc.returncode != 0 or match is None:
        raise DrillError(f"the snapshot does not read: {proc.stdout.strip().splitlines()[-1:]}")
    return int(match[1])


class _ScratchRedis:
    def __init__(self, server: subprocess.Popen[bytes]) -> None:
        self.server = server

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.pid, signal.SIGKILL)
        self.server.wait()
        track(self, False)


def _start(workdir: Path, timer: Timer) -> tuple[_ScratchRedis, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [
            program_path(REDIS_SERVER.name), "--bind", "127.0.0.1", "--port", str(port),
            "--dir", str(workdir),
            "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--logfile", str(workdir / "redis.log"),
            "--pidfile", str(workdir / "redis.pid"),  # for the clean-up after a kill
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env=child_env(),
    )  # fmt: skip
    scratch = _ScratchRedis(server)
    track(scratch, True)
    try:
        _wait_loaded(server, port, workdir, timer)
    except BaseException:
        scratch.close()
        raise
    return scratch, port


def _wait_loaded(server: subprocess.Popen[bytes], port: int, workdir: Path, timer: Timer) -> None:
    """Until the server answers with the snapshot loaded; the deadline bounds the wait."""
    while True:
        try:
            client = redis_client.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
            with client:
                if client.info("persistence").get("loading") == 0:
                    return
        except redis_client.RedisError:
            pass
        if server.poll() is not None:
            raise DrillError(f"redis-server exited: {_tail(workdir / 'redis.log')}")
        timer.remaining()
        time.sleep(0.05)


def _key_count(port: int, timer: Timer) -> int:
    timeout = min(10.0, timer.remaining())
    with redis_client.Redis(port=port, socket_timeout=timeout) as client:
        keyspace = client.info("keyspace")
    return sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))


def _tail(log: Path) -> str:
    try:
        return log.read_text().strip().splitlines()[-1]
    except (OSError, IndexError):
        return "no log"
