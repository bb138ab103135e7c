"""The `redis` drill: the newest RDB snapshot loaded into a scratch redis-server, isolated like
every restore and reached on a Unix socket of its own, its keys counted against what the snapshot
holds (redis-check-rdb reads every record), timed; with `redis.heartbeat`, the data the snapshot
loses measured: production's heartbeat key when the drill starts, less the one loaded."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import redis as redis_client

from checks.support.redisconn import connection
from checks.support.stores import listed_backups, open_store
from core.config.redis import RedisConfig
from core.config.schema import Config, Target
from core.humanize import count, format_bytes
from core.programs import REDIS_CHECK_RDB, REDIS_SERVER, program_path
from exporter.drills.heartbeat import judged_loss, redis_tick
from exporter.drills.isolation import Isolation
from exporter.drills.leftovers import MARKER, mark
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import (
    DRILL_FAILURES,
    DrillError,
    drill_isolation,
    new_scratch_dir,
    require_space,
    track,
)
from exporter.drills.scratchfiles import create_file, give, read_tail

SCENARIO = "redis"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, cache = target.drills, target.redis
    assert drills is not None and cache is not None and cache.snapshot_store
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    truth = redis_production_tick(cache)
    try:
        workdir = new_scratch_dir(drills.scratch, config.state_dir, "rdb-")
    except DrillError as exc:  # no room of its own to restore in: a failed drill, said
        return timer.fail(exc, drills.timeout)
    try:
        store = open_store(cache.snapshot_store, config.aws)
        snapshots = listed_backups(store, cache.snapshot_patterns)
        if not snapshots:
            raise DrillError(f"no snapshot in {store.url} to load")
        newest = snapshots[-1]
        timer.result.values.update(backup=newest.key, backup_bytes=newest.size)
        timer.result.sizes = [(s.modified, s.size) for s in snapshots]
        require_space(workdir, newest.size, drills.scratch.disk_factor)
        isolated = drill_isolation(drills, False, "")
        timer.result.values["isolation"] = isolated.mode
        data = workdir / "data"
        data.mkdir(mode=0o700)
        with timer.phase("download"), os.fdopen(create_file(data, "dump.rdb"), "wb") as sink:
            for block in store.chunks(newest.key):
                sink.write(block)
                timer.remaining()
        give(isolated.other_user, data)
        expected = _keys_in(data / "dump.rdb", isolated, timer)
        with timer.phase("restore"):
            server = _start(workdir, isolated, config.state_dir, timer)
        try:
            with timer.phase("verify"):
                loaded = _key_count(server, timer)
                rpo = config.objective(target, "redis").rpo
                problems = _measured_loss(server, cache, truth, rpo, timer)
        finally:
            server.close()
        timer.result.values.update(keys_expected=expected, keys_loaded=loaded)
        summary = f"loaded {newest.key} ({format_bytes(newest.size)}): {count(loaded, 'key')}"
        if loaded != expected:
            problems.insert(0, f"the snapshot holds {expected}")
        if problems:
            return timer.finish(False, "; ".join([summary, *problems]))
        return timer.finish(True, summary)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _keys_in(rdb: Path, isolated: Isolation, timer: Timer) -> int:
    """The keys the snapshot holds, as redis-check-rdb counts them reading every record
    (isolated: the snapshot is anyone's who can write the store)."""
    proc = isolated.run(
        [program_path(REDIS_CHECK_RDB.name), str(rdb)], timeout=timer.remaining(),
        readable=(rdb.parent,),
    )  # fmt: skip
    out = proc.stdout.decode("utf-8", "replace")
    match = re.search(r"\[info\] (\d+) keys read", out)
    if proc.returncode != 0 or match is None:
        raise DrillError(f"the snapshot does not read: {out.strip().splitlines()[-1:]}")
    return int(match[1])


class _ScratchRedis:
    """A redis-server drwatch started (its child, isolated), on a Unix socket of its own."""

    def __init__(self, workdir: Path, isolated: Isolation, state_dir: str) -> None:
        self.server: subprocess.Popen[bytes] | None = None
        self.socket_dir = Path(tempfile.mkdtemp(prefix=f"{MARKER}-{os.getpid()}-"))
        mark(self.socket_dir, state_dir)
        self.socket = self.socket_dir / "redis.sock"
        self.data = workdir / "data"
        self.log = workdir / "redis.log"
        self.isolated = isolated

    def start(self) -> None:
        give(self.isolated.other_user, self.socket_dir, self.data)
        log = create_file(self.log.parent, self.log.name)
        try:
            self.server = self.isolated.popen(
                [
                    program_path(REDIS_SERVER.name), "--port", "0", "--unixsocket",
                    str(self.socket), "--unixsocketperm", "700", "--dir", str(self.data),
                    "--dbfilename", "dump.rdb", "--save", "", "--appendonly", "no",
                    "--protected-mode", "yes", "--logfile", "",
                ],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                writable=(self.data, self.socket_dir),
            )  # fmt: skip
        finally:
            os.close(log)

    def client(self, timeout: float, db: int = 0) -> redis_client.Redis:
        return redis_client.Redis(
            unix_socket_path=str(self.socket), socket_timeout=timeout,
            socket_connect_timeout=timeout, db=db,
        )  # fmt: skip

    def exited(self) -> bool:
        return self.server is not None and self.server.poll() is not None

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)  # our own child: proven
            server.wait()
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        track(self, False)


def _start(workdir: Path, isolated: Isolation, state_dir: str, timer: Timer) -> _ScratchRedis:
    scratch = _ScratchRedis(workdir, isolated, state_dir)
    track(scratch, True)
    try:
        scratch.start()
        _wait_loaded(scratch, timer)
    except BaseException:
        scratch.close()
        raise
    return scratch


def _wait_loaded(server: _ScratchRedis, timer: Timer) -> None:
    """Until the server answers with the snapshot loaded; the deadline bounds the wait."""
    while True:
        try:
            with server.client(1) as client:
                if client.info("persistence").get("loading") == 0:
                    return
        except redis_client.RedisError:
            pass
        if server.exited():
            raise DrillError(f"redis-server exited: {_tail(server.log)}")
        timer.remaining()
        time.sleep(0.05)


def _key_count(server: _ScratchRedis, timer: Timer) -> int:
    with server.client(min(10.0, timer.remaining())) as client:
        keyspace = client.info("keyspace")
    return sum(int(db.get("keys", 0)) for db in keyspace.values() if isinstance(db, dict))


def redis_production_tick(cache: RedisConfig) -> float | None:
    """Production's heartbeat as the drill starts: what a snapshot taken now would hold."""
    if cache.heartbeat is None:
        return None
    try:
        with connection(cache) as client:
            return redis_tick(client.get(cache.heartbeat.key))
    except redis_client.RedisError:
        return None


def _measured_loss(
    server: _ScratchRedis, cache: RedisConfig, truth: float | None, rpo: float | None,
    timer: Timer,
) -> list[str]:  # fmt: skip
    if cache.heartbeat is None or truth is None:
        return []
    with server.client(min(10.0, timer.remaining()), _db(cache.url)) as client:
        restored = redis_tick(client.get(cache.heartbeat.key))
    if restored is None:
        return [f"the heartbeat key {cache.heartbeat.key} is not in the snapshot"]
    loss, problem = judged_loss(truth, restored, rpo)
    timer.result.values["measured_data_loss_seconds"] = round(loss, 3)
    return [problem] if problem else []


def _db(url: str) -> int:
    """The database a redis:// URL selects (its path), 0 by default."""
    path = urlparse(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _tail(log: Path) -> str:
    lines = read_tail(log).strip().splitlines()
    return lines[-1] if lines else "no log"
