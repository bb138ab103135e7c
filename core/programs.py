"""Every program drwatch runs, declared once: where it is looked for and the Debian package that
installs it. The Dockerfile installs each package (a test holds it to this list)."""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

PG_LIB = Path("/usr/lib/postgresql")  # Debian's per-version binaries: <version>/bin/<name>


# Every program drwatch starts gets an environment built from nothing: only what it needs, never
# drwatch's own (which holds production's DSNs and credentials). A restored backup is code from
# whoever can write the store, and a server drwatch starts runs it.
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def child_env(**needed: str) -> dict[str, str]:
    """The environment of a program drwatch starts: a PATH, the C locale, what it needs."""
    return {"PATH": CHILD_PATH, "LC_ALL": "C", "TZ": "UTC", **needed}


def program_path(name: str) -> str:
    """Where drwatch's own PATH finds `name` (a child's PATH is not drwatch's); FileNotFoundError
    naming it when it is not installed there."""
    if os.path.isabs(name):
        return name
    found = shutil.which(name, path=os.environ.get("PATH"))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "not installed", name)
    return found


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
PSQL = Program(
    "psql", "postgresql-client", "full_restore drill of plain SQL dumps", server_bin=True
)
PG_VERIFYBACKUP = Program("pg_verifybackup", "postgresql-client", "pitr drill", server_bin=True)
PG_SERVER = Program("postgres", "postgresql", "drill scratch clusters (initdb, pg_ctl)", True)
PGBACKREST = Program("pgbackrest", "pgbackrest", "pitr drill restoring with pgBackRest")
REDIS_CHECK_RDB = Program("redis-check-rdb", "redis-tools", "RDB snapshot verification")
REDIS_SERVER = Program("redis-server", "redis-server", "redis drill scratch server")
BWRAP = Program("bwrap", "bubblewrap", "the sandbox every restore runs in")

# The backup tools a team restores with (drills.pitr.method: tool), installed beside drwatch by the
# team where it uses them; not in drwatch's image.
BARMAN = Program("barman", "barman", "pitr drill restoring with barman recover")
BARMAN_CLOUD_RESTORE = Program(
    "barman-cloud-restore", "barman-cli-cloud", "pitr drill restoring with barman-cloud"
)
WALG = Program("wal-g", "none: WAL-G's release binary", "pitr drill restoring with WAL-G")
TEAM_TOOLS = (BARMAN, BARMAN_CLOUD_RESTORE, WALG)

PROGRAMS = (
    PG_RESTORE, PG_AMCHECK, PSQL, PG_VERIFYBACKUP, PG_SERVER, PGBACKREST, REDIS_CHECK_RDB,
    REDIS_SERVER, BWRAP,
)  # fmt: skip
