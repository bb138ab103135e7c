"""Every program drwatch runs, declared once: where it is looked for and the Debian package that
installs it. The Dockerfile installs each package (a test holds it to this list)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

PG_LIB = Path("/usr/lib/postgresql")  # Debian's per-version binaries: <version>/bin/<name>


@dataclass(frozen=True)
class Program:
    name: str
    package: str  # the Debian package that installs it
    used_for: str
    server_bin: bool = False  # one of PostgreSQL's per-version binaries (newest version first)

    def find(self) -> str | None:
        """The path to run, or None when it is not installed."""
        if self.server_bin:
            versions = [p for p in PG_LIB.glob(f"*/bin/{self.name}") if p.parts[-3].isdigit()]
            if versions:
                return str(max(versions, key=lambda p: int(p.parts[-3])))
        return shutil.which(self.name)


PG_RESTORE = Program(
    "pg_restore", "postgresql-client", "dump verification, full_restore drill", server_bin=True
)
PG_AMCHECK = Program("pg_amcheck", "postgresql-client", "index checks on drill copies", True)
PG_VERIFYBACKUP = Program("pg_verifybackup", "postgresql-client", "pitr drill", server_bin=True)
PG_SERVER = Program("postgres", "postgresql", "drill scratch clusters (initdb, pg_ctl)", True)
PGBACKREST = Program("pgbackrest", "pgbackrest", "pitr drill restoring with pgBackRest")
REDIS_CHECK_RDB = Program("redis-check-rdb", "redis-tools", "RDB snapshot verification")
REDIS_SERVER = Program("redis-server", "redis-server", "redis drill scratch server")
RUNUSER = Program("runuser", "util-linux", "drill scratch clusters when drwatch runs as root")

PROGRAMS = (
    PG_RESTORE, PG_AMCHECK, PG_VERIFYBACKUP, PG_SERVER, PGBACKREST, REDIS_CHECK_RDB, REDIS_SERVER,
    RUNUSER,
)  # fmt: skip
