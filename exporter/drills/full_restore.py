"""The `full_restore` drill: the newest dump restored with pg_restore into a scratch PostgreSQL,
then checked: the target's verification items on the copy, row counts against production for
the same time range, and index integrity with pg_amcheck. Judged by what the copy holds, never by
an exit code alone."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from checks.support.stores import listed_backups, nested_prefixes, open_store
from core.config.drills import DrillsConfig
from core.config.postgres import server
from core.config.schema import Config, Target
from core.humanize import format_bytes
from exporter.drills.copy_checks import check_copy
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import (
    DRILL_FAILURES,
    DrillError,
    StagingDatabase,
    ThrowawayCluster,
    major_version,
    new_scratch_dir,
    require_space,
    server_binaries,
)

SCENARIO = "full_restore"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.full_restore is not None and backups is not None
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    workdir = new_scratch_dir(drills.scratch, config.state_dir, "dump-")
    try:
        return _run(config, target, drills, timer, workdir)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    config: Config, target: Target, drills: DrillsConfig, timer: Timer, workdir: Path
) -> DrillResult:
    backups = target.backups
    assert backups is not None and backups.store and drills.full_restore is not None
    store = open_store(backups.store, config.aws)
    exclude = nested_prefixes(
        backups.store, backups.wal_store, backups.base_store, backups.replica_store
    )
    dumps = listed_backups(store, backups.patterns, exclude)
    if not dumps:
        raise DrillError(f"no backup in {store.url} to restore")
    newest = dumps[-1]
    timer.result.values.update(backup=newest.key, backup_bytes=newest.size)
    require_space(workdir, newest.size, drills.scratch.disk_factor)
    dump = workdir / Path(newest.key).name
    with timer.phase("download"), open(dump, "wb") as sink:
        for block in store.chunks(newest.key):
            sink.write(block)
            timer.remaining()  # raises past the deadline
    scratch = _scratch(config, drills, timer.deadline, dump)
    try:
        with timer.phase("restore"):
            timer.remaining()
            scratch.start()
            copy = scratch.dsn(scratch.create_database())
            _pg_restore(scratch, copy, dump, drills.full_restore.jobs, timer)
        with timer.phase("verify"):
            timer.remaining()
            problems = check_copy(target, copy, timer)
    finally:
        scratch.close()
    ok = not problems
    restored = f"restored {newest.key} ({format_bytes(newest.size)})"
    return timer.finish(
        ok, "; ".join([restored, *problems]) if problems else f"{restored}, checked"
    )


def _scratch(
    config: Config, drills: DrillsConfig, deadline: float, dump: Path
) -> ThrowawayCluster | StagingDatabase:
    if drills.scratch.dsn:
        for target in config.targets:  # names may differ and still reach one server
            if target.postgres and _addresses(target.postgres.dsn) & _addresses(drills.scratch.dsn):
                raise DrillError(
                    f"drills.scratch.dsn reaches the server of target {target.name!r}; a drill "
                    "never writes to a monitored server"
                )
        return StagingDatabase(drills.scratch.dsn)
    pg_bin = server_binaries(drills.scratch.pg_bin)
    dumped = _dumped_from(pg_bin, dump)
    server = major_version(pg_bin)
    if dumped is not None and dumped > server:
        raise DrillError(
            f"the dump comes from PostgreSQL {dumped}; the scratch server is {server} "
            f"(set drills.scratch.pg_bin to PostgreSQL {dumped} or newer)"
        )
    return ThrowawayCluster(drills.scratch, Path(config.state_dir), deadline)


def _addresses(dsn: str) -> set[tuple[str, str]]:
    """(address, port) pairs the DSN's host resolves to; a socket directory is itself."""
    host, port = server(dsn)
    if host.startswith("/"):
        return {(host, port)}
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return {(host, port)}
    return {(str(info[4][0]), port) for info in infos}


def _dumped_from(pg_bin: Path, dump: Path) -> int | None:
    """The major version of the server the dump was taken from (its table of contents says)."""
    listing = subprocess.run(
        [str(pg_bin / "pg_restore"), "--list", str(dump)], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    if "unsupported version" in listing.stderr:  # drwatch's limit, not the dump's fault
        raise DrillError(
            f"the dump was written by a newer pg_dump than {pg_bin}/pg_restore reads "
            "(set drills.scratch.pg_bin to the dump's PostgreSQL version or newer)"
        )
    if listing.returncode != 0:
        raise DrillError(f"the dump does not read: {listing.stderr.strip()[:300]}")
    match = re.search(r"Dumped from database version: (\d+)", listing.stdout)
    return int(match[1]) if match else None


def _pg_restore(
    scratch: ThrowawayCluster | StagingDatabase, copy: str, dump: Path, jobs: int, timer: Timer
) -> None:
    binary = (
        scratch.pg_bin / "pg_restore" if isinstance(scratch, ThrowawayCluster) else "pg_restore"
    )
    # Production roles do not exist in a scratch database: restored without owners or grants.
    args = [str(binary), "--no-owner", "--no-privileges", f"--jobs={jobs}", "-d", copy, str(dump)]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, errors = proc.communicate(timeout=max(1.0, timer.remaining()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pg_restore --jobs has workers: the whole group
        proc.wait()
        raise
    if proc.returncode != 0:
        first = [line for line in errors.splitlines() if "error" in line.lower()][:3]
        raise DrillError(f"pg_restore failed: {' | '.join(first) or errors.strip()[:300]}")
