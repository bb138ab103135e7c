"""The `full_restore` drill: the newest dump restored with pg_restore into a scratch PostgreSQL,
then checked: the target's verification items on the copy, row counts against production for
the same time range, and index integrity with pg_amcheck. Judged by what the copy holds, never by
an exit code alone."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from checks.support.compression import CompressionError
from checks.support.plaindump import is_plain
from checks.support.stores import (
    Store,
    StoredObject,
    listed_backups,
    nested_prefixes,
    open_store,
)
from core.config.drills import DrillsConfig
from core.config.postgres import server
from core.config.schema import Config, Scenario, Target
from core.humanize import format_bytes
from core.programs import PG_RESTORE, program_path
from exporter.drills.copy_checks import check_copy, heartbeat_at_start
from exporter.drills.isolation import Isolation
from exporter.drills.plain_restore import plain_lines, plain_restore
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import (
    DRILL_FAILURES,
    DrillError,
    ThrowawayCluster,
    drill_isolation,
    major_version,
    new_scratch_dir,
    require_space,
    server_binaries,
)
from exporter.drills.scratchfiles import give
from exporter.drills.staging import StagingDatabase

SCENARIO = "full_restore"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.full_restore is not None and backups is not None
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    heartbeat_at_start(target, timer)
    try:
        workdir = new_scratch_dir(drills.scratch, config.state_dir, "dump-")
    except DrillError as exc:  # no room of its own to restore in: a failed drill, said
        return timer.fail(exc, drills.timeout)
    try:
        return restore_newest(config, target, drills, timer, workdir)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def restore_newest(
    config: Config, target: Target, drills: DrillsConfig, timer: Timer, workdir: Path
) -> DrillResult:
    """The newest dump of the target's store restored and checked (finished on `timer`)."""
    backups = target.backups
    assert backups is not None and backups.store and drills.full_restore is not None
    store = open_store(backups.store, config.aws)
    exclude = nested_prefixes(
        backups.store, backups.wal_store, backups.base_store, backups.replica_store
    )
    dumps = listed_backups(store, backups.patterns, exclude)
    if not dumps:
        raise DrillError(f"no backup in {store.url} to restore")
    timer.result.sizes = [(d.modified, d.size) for d in dumps]
    return restore_dump(config, target, timer, workdir, store, dumps[-1], drills.full_restore.jobs)


def restore_dump(
    config: Config,
    target: Target,
    timer: Timer,
    workdir: Path,
    store: Store,
    newest: StoredObject,
    jobs: int,
) -> DrillResult:
    """`newest` from `store` downloaded, restored into a scratch database and checked."""
    drills = target.drills
    assert drills is not None
    timer.result.values.update(backup=newest.key, backup_bytes=newest.size)
    if newest.etag:
        timer.result.values["backup_etag"] = newest.etag
    require_space(workdir, newest.size, drills.scratch.disk_factor)
    dump = workdir / Path(newest.key).name
    digest = hashlib.sha256()
    with timer.phase("download", newest.size), open(dump, "wb") as sink:
        for block in store.chunks(newest.key):
            sink.write(block)
            digest.update(block)
            timer.remaining()  # raises past the deadline
    timer.result.values["backup_sha256"] = digest.hexdigest()
    plain = is_plain(newest.key)
    # What reads the dump runs isolated too: a dump is anyone's who can write the store.
    client = drill_isolation(drills, False, "pg_restore", client_only=True)
    give(client.other_user, dump)
    cap = target.backups.uncompressed_cap(newest.size) if target.backups else None
    header = _plain_header(dump, cap) if plain else _dump_header(client, drills, dump)
    scratch = _scratch(config, drills, timer.deadline, header, plain)
    isolated = scratch.isolation if isinstance(scratch, ThrowawayCluster) else client
    timer.result.values["isolation"] = isolated.mode  # how this drill's restore was isolated
    try:
        with timer.phase("restore", newest.size):
            timer.remaining()
            scratch.start()
            # Restored and read as a role that cannot run programs or touch server files.
            copy = scratch.restorer_dsn(scratch.create_database(header.extensions))
            if plain:
                plain_restore(copy, dump, timer, _database(target), cap)
            else:
                _pg_restore(scratch, drills, copy, dump, header, jobs, timer)
        with timer.phase("verify"):
            timer.remaining()
            # The dump holds what was committed when pg_dump started (its archive's time), at
            # the latest when the upload finished.
            dumped_at = min(header.created_at or newest.modified, newest.modified)
            timer.result.values["backup_time"] = dumped_at
            scenario: Scenario = (
                "cross_region" if timer.result.scenario == "cross_region" else "full_restore"
            )
            rpo = config.objective(target, scenario).rpo
            problems = check_copy(target, copy, timer, dumped_at, rpo=rpo)
    except DRILL_FAILURES as exc:  # asked while the scratch server's log is still there
        raise scratch.explain(exc, int(newest.size * drills.scratch.disk_factor)) from None
    finally:
        scratch.close()
    ok = not problems
    restored = f"restored {newest.key} ({format_bytes(newest.size)}) from {store.url}"
    return timer.finish(
        ok, "; ".join([restored, *problems]) if problems else f"{restored}, checked"
    )


def _scratch(
    config: Config, drills: DrillsConfig, deadline: float, header: DumpHeader, plain: bool
) -> ThrowawayCluster | StagingDatabase:
    if drills.scratch.dsn:
        for target in config.targets:  # names may differ and still reach one server
            if target.postgres and _addresses(target.postgres.dsn) & _addresses(drills.scratch.dsn):
                raise DrillError(
                    f"drills.scratch.dsn reaches the server of target {target.name!r}; a drill "
                    "never writes to a monitored server"
                )
        return StagingDatabase(drills.scratch.dsn, config.state_dir)
    pg_bin = server_binaries(drills.scratch.pg_bin)
    dumped = header.major
    server = major_version(pg_bin)
    if dumped is not None and dumped > server:
        raise DrillError(
            f"the dump comes from PostgreSQL {dumped}; the scratch server is {server} "
            f"(set drills.scratch.pg_bin to PostgreSQL {dumped} or newer)"
        )
    return ThrowawayCluster(drills, Path(config.state_dir), deadline, executes=plain)


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


@dataclass(frozen=True)
class DumpHeader:
    major: int | None  # the PostgreSQL major version the dump was taken from
    created_at: float | None  # when pg_dump started (its snapshot), where the header says so
    listing: str  # pg_restore --list: the table of contents, one entry a line
    extensions: list[str]  # what its CREATE EXTENSION entries name


_EXTENSION = re.compile(r"^\d+; \d+ \d+ EXTENSION - (\S+)", re.MULTILINE)
# Left out of the restore: the superuser created the extensions beforehand, from the server's
# own files; their comments belong to their owner.
_SUPERUSER_ENTRIES = re.compile(r"^\d+; \d+ \d+ (EXTENSION - |COMMENT - EXTENSION )")


def _pg_restore_binary(drills: DrillsConfig) -> str:
    if drills.scratch.dsn:
        return PG_RESTORE.find() or program_path(PG_RESTORE.name)
    return str(server_binaries(drills.scratch.pg_bin) / "pg_restore")


def _dump_header(client: Isolation, drills: DrillsConfig, dump: Path) -> DumpHeader:
    """What the dump's table of contents says of where and when it was taken."""
    pg_restore = _pg_restore_binary(drills)
    done = client.run(
        [pg_restore, "--list", str(dump)], timeout=300,
        readable=(dump.parent, Path(pg_restore).parent.parent),
    )  # fmt: skip
    listing = subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )  # fmt: skip
    if "unsupported version" in listing.stderr:  # drwatch's limit, not the dump's fault
        raise DrillError(
            f"the dump was written by a newer pg_dump than {pg_restore} reads "
            "(set drills.scratch.pg_bin to the dump's PostgreSQL version or newer)"
        )
    if listing.returncode != 0:
        raise DrillError(f"the dump does not read: {listing.stderr.strip()[:300]}")
    match = re.search(r"Dumped from database version: (\d+)", listing.stdout)
    return DumpHeader(
        int(match[1]) if match else None,
        _created_at(listing.stdout),
        listing.stdout,
        _EXTENSION.findall(listing.stdout),
    )


def _plain_header(dump: Path, cap: int | None) -> DumpHeader:
    """What a plain SQL dump says of itself: its server version in its first lines, the
    extensions it creates (read through once; the superuser creates them beforehand)."""
    major: int | None = None
    extensions: list[str] = []
    try:
        for line in plain_lines(dump.name, dump, cap):
            if major is None and (m := _PLAIN_VERSION.match(line.text)):
                major = int(m[1])
            elif m := _PLAIN_EXTENSION.match(line.text):
                extensions.append(m[1].decode("utf-8", "replace").strip('"'))
    except CompressionError as exc:
        raise DrillError(f"the dump does not read: {exc}") from None
    return DumpHeader(major, None, "", extensions)


_PLAIN_VERSION = re.compile(rb"^-- Dumped from database version (\d+)")
_PLAIN_EXTENSION = re.compile(rb"^CREATE EXTENSION IF NOT EXISTS (\S+)")


def _created_at(listing: str) -> float | None:
    """`;     Archive created at 2026-12-06 02:00:00 UTC`: pg_dump's wall clock, which names its
    zone only as an abbreviation; read when it is UTC (as on most servers), else not used."""
    match = re.search(r"Archive created at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (UTC|GMT)\b", listing)
    if match is None:
        return None
    return datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def _pg_restore(
    scratch: ThrowawayCluster | StagingDatabase,
    drills: DrillsConfig,
    copy: str,
    dump: Path,
    header: DumpHeader,
    jobs: int,
    timer: Timer,
) -> None:
    entries = dump.with_name(dump.name + ".list")
    entries.write_text(
        "".join(line + "\n" for line in header.listing.splitlines()
                if not _SUPERUSER_ENTRIES.match(line))
    )  # fmt: skip
    # The password goes in the child's environment, never on its command line where every
    # local user's `ps` would see it.
    params = conninfo_to_dict(copy)
    password = str(params.pop("password", "") or "")
    env = {"PGPASSWORD": password} if password else {}
    # Production roles do not exist in a scratch database: restored without owners or grants.
    args = [_pg_restore_binary(drills), "--no-owner", "--no-privileges", f"--jobs={jobs}",
            "-L", str(entries), "-d", make_conninfo("", **params), str(dump)]  # fmt: skip
    if isinstance(scratch, ThrowawayCluster):  # isolated beside the scratch server's socket
        isolated = scratch.isolation
        where: dict[str, object] = {"writable": (scratch.socket_dir,),
                                    "readable": (dump.parent, scratch.pg_bin.parent)}
    else:  # isolated, with the network that reaches the staging server
        isolated = drill_isolation(drills, False, "pg_restore", client_only=True)
        where = {"readable": (dump.parent, Path(args[0]).parent.parent), "network": True}
    give(isolated.other_user, dump, entries)
    proc = isolated.popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, **where
    )  # fmt: skip
    try:
        _, errors = proc.communicate(timeout=max(1.0, timer.remaining()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pg_restore --jobs has workers: the whole group
        proc.wait()
        raise
    if proc.returncode != 0:
        text = errors.decode("utf-8", "replace")
        first = [line for line in text.splitlines() if "error" in line.lower()][:3]
        raise DrillError(f"pg_restore failed: {' | '.join(first) or text.strip()[:300]}")


def _database(target: Target) -> str | None:
    """Production's database, which a plain dump taken with -C names in its \\connect."""
    if target.postgres is None:
        return None
    return str(conninfo_to_dict(target.postgres.dsn).get("dbname") or "") or None
