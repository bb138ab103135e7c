"""Where a drill restores: a throwaway PostgreSQL cluster drwatch starts itself, or a database of
its own on a staging server. Either is removed afterwards, whatever happens.

The throwaway cluster runs isolated (exporter.drills.isolation), as a child drwatch holds: it is
stopped by signalling that child, never a pid read from a file. It listens on a Unix socket only,
in a directory of its own, and its superuser and restoring role log in with random passwords only
drwatch holds (never `trust`: a dump's code that reaches the socket must not become superuser).
The scratch directory stays drwatch's; only `data` inside it is the server's, so the server's
user cannot swap it for a link to another cluster. A cluster left behind by a killed drwatch is
removed at the next start (exporter.drills.leftovers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg import sql

from checks.support.pg import scratch_server
from core.config.drills import DrillsConfig, ScratchConfig
from core.errors import CheckError, DrwatchError
from core.humanize import format_bytes
from core.programs import PG_SERVER
from exporter.drills.capacity import CAPACITY
from exporter.drills.isolation import Isolation, IsolationUnavailable, isolation
from exporter.drills.leftovers import MARKER, NotOurs, mark, safe_base
from exporter.drills.scratchfiles import create_file, give, read_tail, write_file

log = logging.getLogger("drwatch.drills")

SUPERUSER = "drwatch_drill"
# Who restores a dump and reads the copy: not a superuser, without pg_execute_server_program,
# pg_read_server_files or pg_write_server_files. A dump is code from whoever can write the store
# (a CHECK constraint's function runs during the restore): as this role it cannot run a program
# or touch the server's files.
RESTORER = "drwatch_restore"
AMCHECK_SCHEMA = "drwatch_amcheck"  # amcheck installed by the superuser, its functions granted
_STOP_WAIT = 10.0  # for an immediate shutdown to end the server's children, before SIGKILL


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
    except OSError as exc:
        raise DrillError(
            f"no scratch directory: {exc.filename}: {exc.strerror} (drills.scratch.dir, "
            "state_dir)"
        ) from None
    made = Path(tempfile.mkdtemp(prefix=f"{MARKER}-{os.getpid()}-{kind}", dir=base))
    made.chmod(0o711)  # the scratch user reaches what is its own inside, lists nothing
    try:
        mark(made, state_dir)
    except OSError as exc:
        shutil.rmtree(made, ignore_errors=True)
        raise DrillError(
            f"state_dir {state_dir} cannot keep drwatch's id ({exc.strerror}): a drill's "
            "directories could not be proven drwatch's after a kill"
        ) from None
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


def drill_isolation(
    drills: DrillsConfig, executes: bool, what: str, client_only: bool = False
) -> Isolation:
    """The isolation this drill's restore runs in; a DrillError naming the setting when there is
    none that the settings allow (`executes`: the format runs its own code, as `what`)."""
    try:
        found = isolation(drills.scratch, client_only)
    except IsolationUnavailable as exc:
        raise DrillError(str(exc)) from None
    if executes and found.executes_untrusted and not drills.trust_backups:
        raise DrillError(
            f"{what} runs the backup's own code, and no isolation works here ({found.why}): "
            "install bubblewrap, run drwatch as root with drills.scratch.user, or set "
            "drills.trust_backups: true to trust whoever can write the store"
        )
    return found


class ThrowawayCluster:
    """A scratch cluster from initdb, for a dump to be restored into."""

    def __init__(
        self, drills: DrillsConfig, state_dir: Path, deadline: float, executes: bool = False
    ) -> None:
        self.pg_bin = server_binaries(drills.scratch.pg_bin)
        self.deadline = deadline
        self.isolation = drill_isolation(drills, executes, "this backup's format")
        self.other_user = self.isolation.other_user
        self.root = new_scratch_dir(drills.scratch, state_dir)
        # Socket paths are limited to ~100 bytes: the socket gets a short directory of its own.
        self.socket_dir = Path(tempfile.mkdtemp(prefix=f"{MARKER}-{os.getpid()}-"))
        self.data = self.root / "data"
        try:  # what it made is removed if it cannot be made whole: no leftover for the next
            mark(self.socket_dir, state_dir)
            self.data.mkdir(mode=0o700)
            give(self.other_user, self.socket_dir, self.data)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            raise
        scratch_server(str(self.socket_dir), True)
        self.password = secrets.token_urlsafe(24)  # the superuser's: drwatch's alone
        self.restorer_password = secrets.token_urlsafe(24)
        self.server: subprocess.Popen[bytes] | None = None
        self.readable: list[Path] = [self.pg_bin.parent]
        self.extra_writable: list[Path] = []  # the server's beyond data (a backup's tablespaces)
        self.network = False  # a restore_command that fetches WAL over the network needs it
        self.server_env: dict[str, str] = {}  # what the server needs beyond child_env()

    def _run(self, *args: str) -> str:
        """A program of the restore, isolated, seeing the data directory; its output."""
        remaining = max(1.0, self.deadline - time.monotonic())
        proc = self.isolation.run(
            args, timeout=remaining, writable=(self.data, self.socket_dir, *self.extra_writable),
            readable=self.readable, network=self.network, env=self.server_env,
        )  # fmt: skip
        out = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            raise DrillError(f"{Path(args[0]).name}: {out[:300]}")
        return proc.stdout.decode("utf-8", "replace")

    def _reachable(self) -> None:
        try:
            self._run("/usr/bin/test", "-w", str(self.data))
        except DrillError:
            raise DrillError(
                f"OS user {self.isolation.account.pw_name} cannot reach {self.root}: make its "
                "parent directories traversable by it (chmod o+x) or set drills.scratch.dir"
            ) from None

    def start(self) -> None:
        self._reachable()
        track(self, True)
        # The password reaches initdb in a file only the server's user reads, for that moment.
        write_file(self.socket_dir, "pwfile", self.password + "\n", self.other_user)
        try:
            self._run(
                str(self.pg_bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                f"--pwfile={self.socket_dir / 'pwfile'}", "--auth-local=scram-sha-256",
                "--auth-host=reject", "--no-sync", "-E", "UTF8", "--locale=C",
            )  # fmt: skip
        finally:
            (self.socket_dir / "pwfile").unlink(missing_ok=True)
        self._configure("postgresql.conf", {})
        self._serve()
        self._wait_ready(self.dsn(), "the scratch server did not start")

    def _configure(self, name: str, extra: dict[str, str]) -> None:
        settings = {
            "listen_addresses": "''",  # a Unix socket only: nothing outside can reach it
            "unix_socket_directories": f"'{self.socket_dir}'",
            "unix_socket_permissions": "0700",
            "port": "5432",
            "fsync": "off",  # a scratch copy: durability is not the point, speed is
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_wal_size": "'4GB'",
            "logging_collector": "off",  # its log is the standard error drwatch keeps
            **extra,
        }
        lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
        write_file(self.data, name, lines, self.other_user, append=True)

    def _serve(self) -> None:
        """The server, as a child drwatch holds (its standard error is the log)."""
        log = create_file(self.root, "log")
        try:
            self.server = self.isolation.popen(
                [str(self.pg_bin / "postgres"), "-D", str(self.data)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, readable=self.readable,
                writable=(self.data, self.socket_dir, *self.extra_writable), network=self.network,
                env=self.server_env,
            )  # fmt: skip
        finally:
            os.close(log)

    def _wait_ready(self, dsn: str, failure: str) -> None:
        """Until the server takes connections; why it stopped if it does, bounded by the
        deadline."""
        while True:
            try:
                psycopg.connect(dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise DrillError(f"{failure}: the server refused drwatch's password") from None
            if why := self.exited():
                raise DrillError(f"{failure}: {why}")
            if time.monotonic() > self.deadline:
                raise subprocess.TimeoutExpired("postgres", 0)
            time.sleep(0.1)  # the server starts on its own; this only looks

    def _log_reason(self) -> str:
        """The last errors in the server's log (why it stopped or would not start)."""
        lines = read_tail(self.root / "log").strip().splitlines()
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
        """Why the server is gone, or None while it runs."""
        if self.server is None or self.server.poll() is None:
            return None
        return self._log_reason() or f"the scratch server exited ({self.server.returncode})"

    def dsn(self, dbname: str = "postgres") -> str:
        return (f"host={self.socket_dir} user={SUPERUSER} dbname={dbname} connect_timeout=10 "
                f"password={self.password}")  # fmt: skip

    def restorer_dsn(self, dbname: str) -> str:
        return (f"host={self.socket_dir} user={RESTORER} dbname={dbname} connect_timeout=10 "
                f"password={self.restorer_password}")  # fmt: skip

    def create_database(self, extensions: list[str] | None = None) -> str:
        """A database the restoring role owns, with the extensions the dump names created by
        the superuser from the server's own files beforehand (the dump's CREATE EXTENSION is
        left out of the restore); amcheck for the index checks, its functions granted."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                .format(sql.Identifier(RESTORER), sql.Literal(self.restorer_password))
            )
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
                _install_amcheck(conn)
        return "restored"

    def stop(self) -> None:
        """The server drwatch started, stopped: an immediate shutdown, then SIGKILL to what it
        started (in a sandbox, SIGKILL to the sandbox ends everything in it)."""
        server, self.server = self.server, None
        if server is None:
            return
        if server.poll() is None and self.isolation.mode != "bwrap":
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGQUIT)  # our own child, not yet reaped: proven
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(_STOP_WAIT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()

    def close(self) -> None:
        self.stop()
        self._remove(self.root)
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        scratch_server(str(self.socket_dir), False)
        track(self, False)

    def _remove(self, root: Path) -> None:
        """The scratch directory, removed: what the server's user wrote there (a data
        directory drwatch's own user cannot enter) by that user, in the sandbox; said when it
        still cannot be, so the next drill's start does not take it for a killed drwatch's."""
        shutil.rmtree(root, ignore_errors=True)
        if root.exists() and self.other_user is not None:
            remove = ["/usr/bin/rm", "-rf", "--", str(root / "data")]
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self.isolation.run(remove, timeout=60, writable=(root,))
            shutil.rmtree(root, ignore_errors=True)
        if root.exists():
            log.warning("a drill's scratch directory could not be removed: %s", root)


def _install_amcheck(conn: psycopg.Connection[Any]) -> None:
    schema = sql.Identifier(AMCHECK_SCHEMA)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS amcheck SCHEMA {}").format(schema))
    conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, sql.Identifier(RESTORER))
    )
    conn.execute(
        sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {} TO {}").format(
            schema, sql.Identifier(RESTORER)
        )
    )
