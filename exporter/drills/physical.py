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

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from checks.backup_tools import pg_basebackup, pgbackrest
from checks.backup_tools.base import RestoreSource, ToolRestore
from checks.support.tarballs import UNREADABLE, UnsafeMember, unpack
from core.config.drills import DrillsConfig
from exporter.drills.scratch import DrillError, ThrowawayCluster, track
from exporter.drills.scratchfiles import give, read_tail, write_file


class PhysicalCopy(ThrowawayCluster):
    def __init__(self, drills: DrillsConfig, state_dir: Path, deadline: float) -> None:
        super().__init__(drills, state_dir, deadline, executes=True)
        self.wal = self.root / "wal"  # where the drill puts the archive's WAL for recovery
        self.wal.mkdir(mode=0o700)
        self.readable.append(self.wal)

    def unpack(self, backup: Path, cap: Callable[[int], int], manifest: bool = True) -> None:
        """The base backup's tars into the data directory, as pg_basebackup's are restored,
        checked against its manifest before anything in it changes (a backup without one, as
        barman-cloud's, is not: said by the caller); a tar that inflates past `cap(its size)`
        fails as a bomb."""
        self._reachable()
        track(self, True)
        has_wal = False
        tablespaces: dict[str, Path] = {}
        for found in sorted(backup.iterdir()):
            placed = pg_basebackup.destination(found.name, self.data, self.root / "tablespaces")
            if placed is None:
                continue
            into, oid = placed
            if oid is not None:
                tablespaces[oid] = into
            into.mkdir(mode=0o700, parents=True, exist_ok=True)
            has_wal |= found.name.startswith("pg_wal.")
            try:
                with open(found, "rb") as source:
                    unpack(source, found.name, into, cap(found.stat().st_size))
            except (*UNREADABLE, UnsafeMember) as exc:
                raise DrillError(f"{found.name}: cannot be unpacked: {exc}") from None
        try:
            pg_basebackup.link_tablespaces(self.data, tablespaces)
        except UnsafeMember as exc:
            raise DrillError(f"tablespaces: {exc}") from None
        if tablespaces:  # the server's to write, and what its sandbox sees
            self.extra_writable.append(self.root / "tablespaces")
        give(self.other_user, self.data, self.wal, *self.extra_writable)
        if manifest:
            shutil.copy(backup / pg_basebackup.MANIFEST, self.data / pg_basebackup.MANIFEST)
            give(self.other_user, self.data)
            self._run(*pg_basebackup.verify_command(self.data, has_wal))
        try:  # verified as it was written; then pointed where the copy keeps them
            pg_basebackup.remap_tablespaces(self.data, tablespaces)
        except UnsafeMember as exc:
            raise DrillError(f"tablespaces: {exc}") from None
        give(self.other_user, self.data)

    def restore_pgbackrest(self, config: str, stanza: str) -> tuple[str, str, list[str]]:
        """pgBackRest's restore of its newest backup set that is a recovery point into the data
        directory, with archiving off and no recovery settings of its own (the drill writes
        them): (the restore_command that fetches WAL through pgBackRest, the set restored, the
        newer sets passed over and why)."""
        self._reachable()
        source = RestoreSource(store_url="", config=config, stanza=stanza)
        # pgBackRest gets its config file, its repositories, the network (a repository may be
        # in S3) and its own PGBACKREST_* variables (credentials given that way), here and in the
        # server that runs archive-get: no more.
        env = [k for k in os.environ if k.startswith("PGBACKREST_")]
        try:
            files = [config, *map(str, pgbackrest.posix_repositories(config))]
        except ValueError as exc:
            raise DrillError(f"drills.pitr.pgbackrest.config: {exc}") from None
        self.use_restore_command(env, files)
        try:
            chosen, passed_over = pgbackrest.recovery_set(
                self._run(*pgbackrest.info_command(source)), stanza
            )
        except ValueError as exc:
            raise DrillError(str(exc)) from None
        restore_command = self.restore_with(pgbackrest.RESTORE, source, chosen)
        return restore_command, chosen, passed_over

    def restore_with(self, tool: ToolRestore, source: RestoreSource, label: str) -> str:
        """The tool's own restore of backup `label` into the data directory, run in the
        sandbox with what `use_restore_command` gave it: the restore_command that fetches WAL
        the tool's way."""
        self._reachable()
        track(self, True)
        give(self.other_user, self.wal)
        program = Path(tool.path()).resolve()
        if not program.is_relative_to("/usr"):  # a tool installed apart (a venv): seen read-only
            self.readable.append(
                program.parent.parent if program.parent.name == "bin" else program.parent
            )
        self._run(*tool.base(source, label, str(self.data)))
        give(self.other_user, self.data)
        return tool.wal(source, str(self.data))

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
