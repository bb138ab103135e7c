"""Where a drill restores: a throwaway PostgreSQL cluster drwatch starts itself, or a database of
its own on a staging server. Either is removed afterwards, whatever happens.

The throwaway cluster listens on a Unix socket only (no TCP at all), in a directory of its own,
and runs as a configured unprivileged OS user when drwatch runs as root (PostgreSQL refuses
root). A cluster left behind by a killed drwatch is stopped and removed at the next start.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg import sql

from checks.support.pg import scratch_server
from checks.support.tarballs import UNREADABLE, UnsafeMember, tar_name, unpack
from core.config.drills import ScratchConfig
from core.errors import CheckError, DrwatchError
from core.humanize import format_bytes
from core.programs import PG_SERVER, PGBACKREST, RUNUSER, child_env, program_path
from exporter.drills.capacity import CAPACITY
from exporter.drills.leftovers import (
    MARKER,
    NotOurs,
    mark,
    safe_base,
    stop_postmaster,
)

SUPERUSER = "drwatch_drill"
# Who restores a dump and reads the copy: not a superuser, without pg_execute_server_program,
# pg_read_server_files or pg_write_server_files. A dump is code from whoever can write the store
# (a CHECK constraint's function runs during the restore): as this role it cannot run a program
# or touch the server's files.
RESTORER = "drwatch_restore"
AMCHECK_SCHEMA = "drwatch_amcheck"  # amcheck installed by the superuser, its functions granted


class Closeable(Protocol):
    def close(self) -> None: ...


_ACTIVE: set[Closeable] = set()  # the scratch servers in use: what close_all() ends
_ACTIVE_LOCK = threading.Lock()


def close_all() -> None:
    """Ends every scratch database in use (drwatch is stopping)."""
    with _ACTIVE_LOCK:
        active = list(_ACTIVE)
    for scratch in active:
        scratch.close()


def track(scratch: Closeable, active: bool) -> None:
    with _ACTIVE_LOCK:
        if active:
            _ACTIVE.add(scratch)
        else:
            _ACTIVE.discard(scratch)


class DrillError(DrwatchError):
    """A drill could not be carried out; the message says why, for the report."""


# What ends a drill as failed (the deadline passing is a TimeoutExpired).
DRILL_FAILURES = (DrillError, CheckError, subprocess.TimeoutExpired)


def scratch_base(scratch: ScratchConfig, state_dir: str | Path) -> Path:
    """Where drills put their files: drills.scratch.dir, or <state_dir>/drills."""
    return Path(scratch.dir) if scratch.dir else Path(state_dir) / "drills"


def new_scratch_dir(scratch: ScratchConfig, state_dir: str | Path, kind: str = "") -> Path:
    """A fresh directory named for the drwatch that owns it and marked as its own, so that the
    clean-up after a kill finds it and can prove it is drwatch's (exporter.drills.leftovers)."""
    try:
        base = safe_base(scratch_base(scratch, state_dir))
    except NotOurs as exc:
        raise DrillError(str(exc)) from None
    made = Path(tempfile.mkdtemp(prefix=f"{MARKER}-{os.getpid()}-{kind}", dir=base))
    mark(made, state_dir)
    return made


def require_space(where: Path, size: int, factor: float) -> None:
    """A clear failed drill rather than a full disk: `factor` times the backup must be free,
    and fit in what the drills running beside it leave of `drills.disk_budget` (else the drill
    is deferred)."""
    free, need = shutil.disk_usage(where).free, size * factor
    CAPACITY.claim_disk(int(need))
    if free < need:
        raise DrillError(
            f"not enough space in {where.parent}: {format_bytes(free)} free, "
            f"{format_bytes(need)} needed ({factor:g} x the backup)"
        )


def server_binaries(configured: str | None) -> Path:
    if configured:
        if not (Path(configured) / "postgres").is_file():
            raise DrillError(
                f"drills.scratch.pg_bin: no PostgreSQL server binaries in {configured}"
            )
        return Path(configured)
    found = PG_SERVER.find()
    if found is None:
        raise DrillError("no PostgreSQL server binaries (set drills.scratch.pg_bin)")
    return Path(found).parent


def major_version(pg_bin: Path) -> int:
    out = subprocess.run(
        [str(pg_bin / "postgres"), "--version"], capture_output=True, text=True, timeout=30
    )
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    if out.returncode != 0 or not match:
        raise DrillError(f"{pg_bin}/postgres does not run: {out.stderr.strip()[:200]}")
    return int(match[1])


class ThrowawayCluster:
    def __init__(self, scratch: ScratchConfig, state_dir: Path, deadline: float) -> None:
        self.pg_bin = server_binaries(scratch.pg_bin)
        self.deadline = deadline
        self.root = new_scratch_dir(scratch, state_dir)
        # Socket paths are limited to ~100 bytes: the socket gets a short directory of its own.
        self.socket_dir = Path(tempfile.mkdtemp(prefix=f"{MARKER}-{os.getpid()}-"))
        mark(self.socket_dir, state_dir)
        scratch_server(str(self.socket_dir), True)
        self._runuser: list[str] = []
        if os.geteuid() == 0:
            if not scratch.user:
                raise DrillError(
                    "PostgreSQL refuses to run as root: set drills.scratch.user (an unprivileged "
                    "OS user, e.g. postgres) or drills.scratch.dsn (a staging server)"
                )
            account = pwd.getpwnam(scratch.user)
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
            self._runuser = [program_path(RUNUSER.name), "-u", scratch.user, "--"]
        self.data = self.root / "data"
        self.server_env: dict[str, str] = {}  # what the server needs beyond child_env()

    def _run(self, *args: str, **env: str) -> None:
        remaining = max(1.0, self.deadline - time.monotonic())
        proc = subprocess.run(
            [*self._runuser, *args], capture_output=True, text=True, timeout=remaining,
            env=child_env(**env),
        )  # fmt: skip
        if proc.returncode != 0:
            raise DrillError(f"{Path(args[0]).name}: {(proc.stderr or proc.stdout).strip()[:300]}")

    def start(self) -> None:
        self._reachable()
        track(self, True)
        self._run(
            str(self.pg_bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        self._configure(self.data / "postgresql.conf", {})
        self._pg_ctl_start()

    def _reachable(self) -> None:
        if (
            self._runuser
            and subprocess.run(
                [*self._runuser, "test", "-w", str(self.root)], env=child_env()
            ).returncode
        ):
            raise DrillError(
                f"OS user {self._runuser[2]} cannot reach {self.root}: make its parent "
                "directories traversable by it (chmod o+x) or set drills.scratch.dir"
            )

    def _configure(self, conf: Path, extra: dict[str, str]) -> None:
        settings = {
            "listen_addresses": "''",  # a Unix socket only: nothing outside can reach it
            "unix_socket_directories": f"'{self.socket_dir}'",
            "port": "5432",
            "fsync": "off",  # a scratch copy: durability is not the point, speed is
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_wal_size": "'4GB'",
            **extra,
        }
        with open(conf, "a") as out:
            out.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl_start(self, failure: str = "the scratch server did not start") -> None:
        wait = str(max(1, int(self.deadline - time.monotonic())))
        try:
            self._run(
                str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                "-w", "-t", wait, "start", **self.server_env,
            )  # fmt: skip
        except DrillError as exc:  # the server's own log says why
            raise DrillError(f"{failure}: {self._log_reason() or exc}") from None

    def _log_reason(self) -> str:
        """The last errors in the server's log (why it stopped or would not start)."""
        try:
            lines = (self.root / "log").read_text().strip().splitlines()
        except OSError:
            return ""
        errors = [line for line in lines if "FATAL" in line or "ERROR" in line][-2:]
        return " | ".join(errors or lines[-2:])

    def explain(self, exc: Exception, needed: int) -> Exception:
        """A failure the scratch disk filling explains is said as such: "no space left on
        <dir>", free and needed bytes, not "server closed the connection unexpectedly"."""
        told = str(exc) + self._log_reason()
        if "No space left on device" not in told and "could not extend file" not in told:
            return exc
        free = shutil.disk_usage(self.root).free
        return DrillError(
            f"no space left on {self.root.parent}: {format_bytes(free)} free, about "
            f"{format_bytes(needed)} needed (drills.scratch.dir, drills.scratch.disk_factor)"
        )

    def exited(self) -> str | None:
        """Why the server is gone, or None while it runs (its postmaster.pid is there)."""
        if (self.data / "postmaster.pid").exists():
            return None
        return self._log_reason() or "the scratch server exited"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} user={SUPERUSER} dbname={dbname} connect_timeout=10"

    def restorer_dsn(self, dbname: str) -> str:
        return f"host={self.socket_dir} user={RESTORER} dbname={dbname} connect_timeout=10"

    def psql(self) -> str:
        return str(self.pg_bin / "psql")

    def create_database(self, extensions: list[str] | None = None) -> str:
        """A database the restoring role owns, with the extensions the dump names created by
        the superuser from the server's own files beforehand (the dump's CREATE EXTENSION is
        left out of the restore); amcheck for the index checks, its functions granted."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {RESTORER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")
            conn.execute(f"CREATE DATABASE restored OWNER {RESTORER}")
        with psycopg.connect(self.dsn("restored"), autocommit=True) as conn:
            available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
            for name in extensions or []:
                if name not in available:
                    raise DrillError(
                        f"the dump needs extension {name!r}, which the scratch server does not "
                        "have (install it, or set drills.scratch.pg_bin)"
                    )
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
                )
            if "amcheck" in available:
                schema = sql.Identifier(AMCHECK_SCHEMA)
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {}").format(schema)
                )
                conn.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                        schema, sql.Identifier(RESTORER)
                    )
                )
                conn.execute(
                    sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {} TO {}").format(
                        schema, sql.Identifier(RESTORER)
                    )
                )
        return "restored"

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, DrillError, OSError):
            self._run(
                str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                "-t", "30", "stop",
            )  # fmt: skip
        stop_postmaster(self.data)  # if pg_ctl could not
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        scratch_server(str(self.socket_dir), False)
        track(self, False)


class PhysicalCopy(ThrowawayCluster):
    """A throwaway server started from a physical base backup, recovering from the WAL archive.

    The backup is unpacked and checked against its manifest (pg_verifybackup) before anything is
    changed in it, then made harmless: a Unix socket only, archiving off, no synchronous standby
    to wait for, trust for local connections, and recovery from WAL the drill downloaded (the
    scratch server never reaches the store, nor holds its credentials), promoted at its end.
    """

    def unpack(self, backup: Path) -> None:
        """The base backup into the data directory, checked against its manifest before
        anything in it changes."""
        self._reachable()
        track(self, True)
        self.data.mkdir(mode=0o700)
        has_wal = False
        for stem, into in (("base", self.data), ("pg_wal", self.data / "pg_wal")):
            for found in (p for p in backup.iterdir() if tar_name(p.name, stem)):
                into.mkdir(mode=0o700, exist_ok=True)
                has_wal |= stem == "pg_wal"
                try:
                    with open(found, "rb") as source:
                        unpack(source, found.name, into)
                except (*UNREADABLE, UnsafeMember) as exc:
                    raise DrillError(f"{found.name}: cannot be unpacked: {exc}") from None
        shutil.copy(backup / "backup_manifest", self.data / "backup_manifest")
        self.wal = self.root / "wal"  # where the drill puts the archive's WAL for recovery
        self.wal.mkdir()
        self._give(self.data, self.wal)
        self._run(
            str(self.pg_bin / "pg_verifybackup"), *([] if has_wal else ["-n"]), str(self.data)
        )

    def restore_pgbackrest(self, config: str, stanza: str) -> str:
        """pgBackRest's restore of its newest backup set into the data directory, with archiving
        off and no recovery settings of its own (the drill writes them); the restore_command
        that fetches WAL through pgBackRest."""
        self._reachable()
        track(self, True)
        self.data.mkdir(mode=0o700)
        self.wal = self.root / "wal"  # unused: pgBackRest fetches the WAL itself
        self.wal.mkdir()
        self._give(self.data, self.wal)
        tool = [
            PGBACKREST.find() or program_path(PGBACKREST.name),
            f"--config={config}",
            f"--stanza={stanza}",
            f"--pg1-path={self.data}",  # archive-get insists it is the server's directory
        ]
        # pgBackRest gets its config file and its own PGBACKREST_* variables (repository
        # credentials given that way), here and in the server that runs archive-get: no more.
        self.server_env = {k: v for k, v in os.environ.items() if k.startswith("PGBACKREST_")}
        self._run(*tool, "--type=none", "--archive-mode=off", "restore", **self.server_env)
        return " ".join([*tool, "archive-get", "%f", '"%p"'])

    def segment_size(self) -> int:
        out = subprocess.run(
            [*self._runuser, str(self.pg_bin / "pg_controldata"), str(self.data)],
            capture_output=True, text=True, timeout=60, env=child_env(),
        )  # fmt: skip
        match = re.search(r"Bytes per WAL segment:\s+(\d+)", out.stdout)
        if match is None:
            raise DrillError(f"pg_controldata: {out.stderr.strip()[:200]}")
        return int(match[1])

    def recover(self, recovery: dict[str, str]) -> None:
        """Recovery from the WAL the drill put in `wal`, promoted at its end, made harmless."""
        for name in ("postgresql.conf", "pg_ident.conf"):  # kept outside the data directory
            (self.data / name).touch()  # by Debian's clusters, so not in their base backups
        (self.data / "pg_hba.conf").write_text("local all all trust\n")
        (self.data / "recovery.signal").touch()
        harmless = {
            "archive_mode": "off",  # it must never write into production's archive
            "synchronous_standby_names": "''",
            "primary_conninfo": "''",
            "shared_preload_libraries": "''",
            "hba_file": f"'{self.data / 'pg_hba.conf'}'",
            "ident_file": f"'{self.data / 'pg_ident.conf'}'",
            "restore_command": f'\'cp "{self.wal}/%f" "%p"\'',
            "recovery_target_action": "'promote'",
            **recovery,
        }
        self._configure(self.data / "postgresql.auto.conf", harmless)
        self._give(self.data, self.wal)
        self._pg_ctl_start("recovery failed")  # pg_ctl waits for consistency: it may end there

    def _give(self, *paths: Path) -> None:
        if self._runuser:
            subprocess.run(["chown", "-R", self._runuser[2], *map(str, paths)], check=True)

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} user={user} dbname={dbname} connect_timeout=10"
