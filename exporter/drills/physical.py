"""A throwaway server started from a physical base backup, recovering from the WAL archive.

A physical copy is the backup's whole server, its code included: its own superuser runs its
functions, so it runs isolated like every restore (exporter.drills.isolation), and with none it
needs `drills.trust_backups`. The backup is unpacked and checked against its manifest
(pg_verifybackup) before anything is changed in it, then made harmless: a Unix socket only (0700,
in a directory of the server's own, so `trust` on it reaches only the server's user and drwatch),
archiving off, no synchronous standby to wait for, and recovery from WAL the drill downloaded (the
server never reaches the store, nor holds its credentials), promoted at its end. pgBackRest
restores with its own config, repository and credentials, as the host that restores for real
would, and the server fetches WAL through it.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from checks.support.tarballs import (
    TAR_SUFFIXES,
    UNREADABLE,
    UnsafeMember,
    link_tablespaces,
    remap_tablespaces,
    tablespace_oid,
    unpack,
)
from core.config.drills import DrillsConfig
from core.programs import PGBACKREST, program_path
from exporter.drills.scratch import DrillError, ThrowawayCluster, track
from exporter.drills.scratchfiles import give, read_tail, write_file


class PhysicalCopy(ThrowawayCluster):
    def __init__(self, drills: DrillsConfig, state_dir: Path, deadline: float) -> None:
        super().__init__(drills, state_dir, deadline, executes=True)
        self.wal = self.root / "wal"  # where the drill puts the archive's WAL for recovery
        self.wal.mkdir(mode=0o700)
        self.readable.append(self.wal)

    def unpack(self, backup: Path, cap: Callable[[int], int]) -> None:
        """The base backup into the data directory, checked against its manifest before
        anything in it changes; a tar that inflates past `cap(its size)` fails as a bomb."""
        self._reachable()
        track(self, True)
        has_wal = False
        tablespaces: dict[str, Path] = {}
        for found in sorted(backup.iterdir()):
            into = {"base": self.data, "pg_wal": self.data / "pg_wal"}.get(found.name.split(".")[0])
            if (oid := tablespace_oid(found.name)) is not None:  # -Ft: <oid>.tar per tablespace
                into = tablespaces[oid] = self.root / "tablespaces" / oid
            if into is None or not found.name.endswith(TAR_SUFFIXES):
                continue
            into.mkdir(mode=0o700, parents=True, exist_ok=True)
            has_wal |= found.name.startswith("pg_wal.")
            try:
                with open(found, "rb") as source:
                    unpack(source, found.name, into, cap(found.stat().st_size))
            except (*UNREADABLE, UnsafeMember) as exc:
                raise DrillError(f"{found.name}: cannot be unpacked: {exc}") from None
        try:
            link_tablespaces(self.data, tablespaces)
        except UnsafeMember as exc:
            raise DrillError(f"tablespaces: {exc}") from None
        if tablespaces:  # the server's to write, and what its sandbox sees
            self.extra_writable.append(self.root / "tablespaces")
        shutil.copy(backup / "backup_manifest", self.data / "backup_manifest")
        give(self.other_user, self.data, self.wal, *self.extra_writable)
        self._run(
            str(self.pg_bin / "pg_verifybackup"), *([] if has_wal else ["-n"]), str(self.data)
        )
        try:  # verified as it was written; then pointed where the copy keeps them
            remap_tablespaces(self.data, tablespaces)
        except UnsafeMember as exc:
            raise DrillError(f"tablespaces: {exc}") from None
        give(self.other_user, self.data)

    def restore_pgbackrest(self, config: str, stanza: str) -> tuple[str, str, list[str]]:
        """pgBackRest's restore of its newest backup set that is a recovery point into the data
        directory, with archiving off and no recovery settings of its own (the drill writes
        them): (the restore_command that fetches WAL through pgBackRest, the set restored, the
        newer sets passed over and why)."""
        self._reachable()
        track(self, True)
        give(self.other_user, self.wal)
        tool = [
            PGBACKREST.find() or program_path(PGBACKREST.name),
            f"--config={config}",
            f"--stanza={stanza}",
            f"--pg1-path={self.data}",  # archive-get insists it is the server's directory
            "--lock-path=/tmp",  # the sandbox's own
            "--log-level-file=off",  # its console says why
        ]
        # pgBackRest gets its config file, its repositories, the network (a repository may be
        # in S3) and its own PGBACKREST_* variables (credentials given that way), here and in the
        # server that runs archive-get: no more.
        self.server_env = {k: v for k, v in os.environ.items() if k.startswith("PGBACKREST_")}
        self.readable += [Path(config), *_posix_repositories(config)]
        self.network = True
        info = [t for t in tool if not t.startswith("--pg1-path=")]  # info takes no pg-path
        chosen, passed_over = recovery_set(self._run(*info, "--output=json", "info"), stanza)
        self._run(*tool, f"--set={chosen}", "--type=none", "--archive-mode=off", "restore")
        return " ".join([*tool, "archive-get", "%f", '"%p"']), chosen, passed_over

    def use_restore_command(self, env_names: list[str], files: list[str]) -> None:
        """Recovery fetches WAL with the team's own restore_command (in the settings given to
        recover): its server gets the network, the variables named (from drwatch's environment:
        the command's credentials, given on purpose) and the files named (its config, its
        keys), read-only."""
        self.network = True
        self.server_env.update({name: os.environ[name] for name in env_names if name in os.environ})
        self.readable += [Path(name) for name in files]

    def segment_size(self) -> int:
        out = self._run(str(self.pg_bin / "pg_controldata"), str(self.data))
        match = re.search(r"Bytes per WAL segment:\s+(\d+)", out)
        if match is None:
            raise DrillError("pg_controldata: no WAL segment size in its output")
        return int(match[1])

    def recover(self, recovery: dict[str, str]) -> None:
        """Recovery from the WAL the drill put in `wal`, promoted at its end, made harmless; the
        caller waits for it (and learns from `exited()` why it stopped)."""
        owner = self.other_user
        for name in ("postgresql.conf", "pg_ident.conf"):  # kept outside the data directory
            write_file(self.data, name, "", owner, append=True)  # by Debian's clusters
        write_file(self.data, "pg_hba.conf", "local all all trust\n", owner)
        write_file(self.data, "recovery.signal", "", owner)
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
        self._configure("postgresql.auto.conf", harmless)
        give(owner, self.wal)
        self._serve()

    def tool_errors(self) -> str:
        """What the restore_command printed that was not PostgreSQL's own log (its errors)."""
        lines = read_tail(self.root / "log").splitlines()
        own = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \S+ \[\d+\] ")  # PostgreSQL's
        said = [line.strip() for line in lines  # and its statements' continuation lines
                if line.strip() and not own.match(line) and not line[:1].isspace()]  # fmt: skip
        errors = [line for line in said if "rror" in line or "xception" in line] or said
        return " | ".join(dict.fromkeys(errors[-2:]))

    def dsn(self, dbname: str = "postgres", user: str = "postgres") -> str:
        return f"host={self.socket_dir} user={user} dbname={dbname} connect_timeout=10"


def _posix_repositories(config: str) -> list[Path]:
    """The local repositories a pgBackRest config names (`repoN-path` of a posix repository):
    what its restore and archive-get read."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(config)
    except (OSError, configparser.Error) as exc:
        raise DrillError(f"drills.pitr.pgbackrest.config: {config}: {exc}") from None
    found: list[Path] = []
    for section in parser.sections():
        options = parser[section]
        for key, value in options.items():
            if match := re.fullmatch(r"repo(\d+)-path", key):
                kind = options.get(f"repo{match[1]}-type", "posix")
                if kind == "posix" and value.startswith("/") and Path(value).exists():
                    found.append(Path(value))
    return found


def recovery_set(info: str, stanza: str) -> tuple[str, list[str]]:
    """The newest backup set `pgbackrest info --output=json` shows as a recovery point (no
    `error`: page checksum errors at backup time; nor in a set it references), and the newer
    sets passed over, each with why."""
    try:
        stanzas = json.loads(info)
        sets = next(s for s in stanzas if s.get("name") == stanza).get("backup", [])
    except (ValueError, StopIteration, AttributeError, TypeError):
        raise DrillError(f"pgbackrest info: no stanza {stanza!r} it can read") from None
    errored = {str(b.get("label")) for b in sets if b.get("error")}
    passed_over: list[str] = []
    for backup in reversed(sets):
        label = str(backup.get("label"))
        bad = ({label} | set(backup.get("reference") or [])) & errored
        if not bad:
            return label, passed_over
        passed_over.append(
            f"{label} (backup-error: page checksum errors at backup time"
            + (f", in {', '.join(sorted(bad - {label}))} it builds on)" if bad - {label} else ")")
        )
    raise DrillError(
        f"no pgBackRest set of stanza {stanza} is a recovery point: "
        + ("; ".join(passed_over) or "none in its repository")
    )
