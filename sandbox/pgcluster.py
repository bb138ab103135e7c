"""A throwaway PostgreSQL cluster: initdb in a temp dir, a free loopback port, real archiving.

As root, every server command runs as the `postgres` OS user (PostgreSQL refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

# Never overwrites; a file already archived with the same content is success (after a failover
# the new primary may archive a segment the old one already did), different content a failure.
ARCHIVE_COPY = (
    "if test -f '{archive}/%f'; then cmp -s '%p' '{archive}/%f'; else cp '%p' '{archive}/%f'; fi"
)
ARCHIVE_FAIL = "exit 1"
ARCHIVE_HANG = "sleep 3600"


def bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin")
    return Path(found[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # retried until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout} s (last error: {last_error})")


class PgCluster:
    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.root = Path(root or tempfile.mkdtemp(prefix="drwatch-pg-"))
        self.root.mkdir(parents=True, exist_ok=True)
        _chown_to_server_user(self.root)
        os.chmod(self.root, 0o755)
        self.datadir = self.root / "data"
        self.backups = self.root / "backups"  # a local backup store: dumps and archived WAL
        self.archive = self.backups / "wal"
        self.socket_dir = self.root / "run"
        self.logfile = self.root / "server.log"
        self.port = port or free_port()
        self.bin = bindir()

    # --- lifecycle ---------------------------------------------------------------------------

    def _run(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_as_server_user(), *args],
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def run_as_server_user(self, *args: str, timeout: float = 120) -> str:
        """A program run as the server's OS user (a backup tool beside the server); stdout."""
        return self._run(*args, timeout=timeout).stdout

    def make_server_dir(self, path: Path) -> None:
        """A directory the server's OS user owns (a backup tool's repository, its logs)."""
        path.mkdir(parents=True, exist_ok=True)
        _chown_to_server_user(path)

    def _make_dirs(self) -> None:
        for path in (self.backups, self.archive, self.socket_dir):
            self.make_server_dir(path)

    def init(
        self, archive_command: str | None = ARCHIVE_COPY, checksums: bool = False, **settings: str
    ) -> PgCluster:
        self._make_dirs()
        self._run(
            str(self.bin / "initdb"),
            *(["--data-checksums"] if checksums else []),
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "fsync": "off",
            "archive_mode": "on" if archive_command else "off",
            "archive_command": _quote((archive_command or "").format(archive=self.archive)),
            **settings,
        }
        with open(self.datadir / "postgresql.conf", "a") as f:
            for key, value in conf.items():
                f.write(f"{key} = {value}\n")
        with open(self.datadir / "pg_hba.conf", "a") as f:
            f.write("host replication all 127.0.0.1/32 trust\n")
        return self

    def start(self) -> PgCluster:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run(
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-m",
                mode,
                "-w",
                "-t",
                "30",
                "stop",
                check=False,
            )

    def destroy(self) -> None:
        self.signal_all(signal.SIGCONT)
        self.stop("immediate")
        self.signal_all(signal.SIGKILL)  # archive_command children outlive an immediate stop
        shutil.rmtree(self.root, ignore_errors=True)

    # --- processes ---------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """The postmaster, its children and whatever they spawned: all run in the data dir."""
        out = []
        target = str(self.datadir.resolve())
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if os.readlink(entry / "cwd") == target:
                    out.append(int(entry.name))
            except OSError:
                continue
        return out

    def signal_all(self, signum: int) -> None:
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    # --- SQL ---------------------------------------------------------------------------------

    def dsn(
        self, dbname: str = "postgres", user: str = "postgres", password: str | None = None
    ) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    @contextmanager
    def connect(
        self, dbname: str = "postgres", autocommit: bool = True, **kwargs: object
    ) -> Iterator[psycopg.Connection]:  # type: ignore[type-arg]
        conn = psycopg.connect(self.dsn(dbname), autocommit=autocommit, connect_timeout=5, **kwargs)  # type: ignore[arg-type]
        try:
            yield conn
        finally:
            conn.close()

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple]:  # type: ignore[type-arg]
        with self.connect(dbname) as conn, conn.cursor() as cur:
            cur.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def write_wal(self, segments: int) -> None:
        """`segments` WAL segments, each with a write in it, switched to the archiver."""
        for _ in range(segments):
            self.execute(
                "CREATE TABLE IF NOT EXISTS w (x int); INSERT INTO w VALUES (1); "
                "SELECT pg_switch_wal()"
            )

    def archive_caught_up(self) -> bool:
        """No segment is waiting for archive_command."""
        ready = self.execute(
            "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
        )
        return bool(ready[0][0] == 0)

    def set(self, **settings: str) -> None:
        """ALTER SYSTEM and reload: how an operator changes archive_command on a live server."""
        with self.connect() as conn:
            for key, value in settings.items():
                conn.execute(f"ALTER SYSTEM SET {key} = {_quote(value)}")  # type: ignore[arg-type]
            conn.execute("SELECT pg_reload_conf()")

    def require_password(self, user: str) -> None:
        """Makes `user` authenticate with a password over TCP (everyone else stays on trust)."""
        hba = self.datadir / "pg_hba.conf"
        hba.write_text(f"host all {user} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        self.execute("SELECT pg_reload_conf()")

    def dump(self, dbname: str, directory: Path, *options: str) -> Path:
        """A custom-format pg_dump, as the runbook's backups are; `options` go to pg_dump."""
        self.make_server_dir(directory)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = directory / f"{dbname}-{stamp}.dump"
        self._run(
            str(self.bin / "pg_dump"),
            "-Fc",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-f",
            str(target),
            *options,
            dbname,
        )
        return target

    def _pg_basebackup(self, datadir: Path, *options: str) -> None:
        self._run(
            str(self.bin / "pg_basebackup"), "-D", str(datadir), "-h", "127.0.0.1",
            "-p", str(self.port), "-U", "postgres", "-c", "fast", "--no-sync", *options,
        )  # fmt: skip

    def base_backup(self) -> None:
        """A base backup (thrown away): what matters is the .backup label it archives."""
        target = Path(tempfile.mkdtemp(prefix="drwatch-basebackup-"))
        _chown_to_server_user(target)
        try:
            self._pg_basebackup(target / "data", "-X", "none")
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def tar_base_backup(
        self, directory: Path, compress: str | None = None, *options: str, wal: str = "stream"
    ) -> Path:
        """`pg_basebackup -Ft -X stream` into `directory` (base.tar, pg_wal.tar, backup_manifest),
        as a PITR drill's base_store holds it; `compress` is -Z's value (gzip, lz4, zstd,
        server-zstd...); `wal` is -X's; `options` go to pg_basebackup as they are."""
        directory.mkdir(parents=True)
        _chown_to_server_user(directory)
        compression = ("-Z", compress) if compress else ()
        self._pg_basebackup(directory / "backup", "-Ft", "-X", wal, *compression, *options)
        return directory / "backup"

    def promote(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-w", "promote")

    # --- replication -------------------------------------------------------------------------

    def create_standby(self, root: Path | None = None, slot: str | None = None) -> PgCluster:
        """A streaming standby; with `slot`, through a physical replication slot of that name."""
        standby = PgCluster(root)
        standby._make_dirs()
        slotted = ("-C", "-S", slot) if slot else ()
        self._pg_basebackup(standby.datadir, "-X", "stream", "-R", *slotted)
        with open(standby.datadir / "postgresql.conf", "a") as f:
            f.write(f"port = {standby.port}\n")
            f.write(f"unix_socket_directories = '{standby.socket_dir}'\n")
            f.write("hot_standby = on\n")
        return standby
