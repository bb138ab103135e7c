"""Physical base backups from the backup tool's catalogue, and the recovery window.

The recovery window is what point-in-time recovery can really reach: from the oldest base
backup whose WAL is continuous from its first segment to the newest archived one, to now. A
backup older than a WAL gap cannot be rolled forward past the gap, whatever its tool says
(pgBackRest's own `verify` does not flag such backups, pgbackrest#1918). Compared with the
configured retention: a window shorter than retention is a promise the archive cannot keep.
"""

from __future__ import annotations

import posixpath
import time

from checks.backup_tools import pg_basebackup
from checks.backup_tools.base import BaseBackup
from checks.backup_tools.registry import (
    archive_files,
    detect_catalogue,
    read_catalogue,
    wal_layout,
)
from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.continuity import (
    SERVER_WAL_SQL,
    Continuity,
    history_reader,
    read_continuity,
)
from checks.support.pg import check_session, fetch_one
from checks.support.stores import Store, StoredObject
from checks.support.verdicts import VerdictCache
from checks.support.verify import (
    VerificationIncomplete,
    manifest_versions_read,
    pg_verifybackup_version,
)
from core.config.postgres import PostgresConfig
from core.config.schema import ObjectiveSpec
from core.config.stores import BackupsConfig
from core.durations import age_of, format_duration
from core.errors import CheckError
from core.humanize import count, format_bytes
from core.metrics import gauge

NAME = "base_backups"
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024  # without PostgreSQL or backups.wal_segment_size

BASE_BACKUPS = gauge(
    "drwatch_base_backups", "Base backups in the catalogue, by type (running ones apart).", "type"
)
BASE_BACKUP_NEWEST_TIMESTAMP_SECONDS = gauge(
    "drwatch_base_backup_newest_timestamp_seconds",
    "When the newest base backup of each type finished.",
    "type",
)
BASE_BACKUP_NEWEST_SIZE_BYTES = gauge(
    "drwatch_base_backup_newest_size_bytes", "Size of the cluster the newest base backup restores."
)
BASE_BACKUPS_FAILED = gauge(
    "drwatch_base_backups_failed",
    "Base backups that are no recovery point: marked failed by their tool (pgBackRest: page "
    "checksum errors; barman: FAILED), unreadable, or missing part of their chain.",
)
BASE_BACKUPS_INCOMPLETE = gauge(
    "drwatch_base_backups_incomplete",
    "Base backups not failed but not yet recovery points: running (in_progress) or copied with "
    "their WAL not yet archived (waiting_for_wal, barman's WAITING_FOR_WALS).",
    "state",
)
RECOVERY_WINDOW_SECONDS = gauge(
    "drwatch_recovery_window_seconds",
    "How far back point-in-time recovery reaches: from the oldest base backup with continuous "
    "WAL to its newest segment (0 if none).",
)
RECOVERY_WINDOW_START_TIMESTAMP_SECONDS = gauge(
    "drwatch_recovery_window_start_timestamp_seconds",
    "The earliest point PITR can reach (absent if no base backup has continuous WAL).",
)
BASE_BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS = gauge(
    "drwatch_base_backup_running_since_timestamp_seconds",
    "When the oldest base backup still running (or abandoned mid-way) started (absent: none).",
)
BASE_BACKUP_RUNNING_BYTES = gauge(
    "drwatch_base_backup_running_bytes",
    "What the base backups still running have written so far.",
)
BASE_BACKUP_MAX_DURATION_SECONDS = gauge(
    "drwatch_base_backup_max_duration_seconds",
    "How long a base backup may run before it counts as stuck: backups.max_duration, else three "
    "times the newest finished backup's duration (at least an hour).",
)
BASE_BACKUP_NEWEST_VERIFIED = gauge(
    "drwatch_base_backup_newest_verified",
    "1 if the newest pg_basebackup backup passed pg_verifybackup, 0 if it failed (absent: not "
    "verified).",
)
RECOVERY_WINDOW_OBJECTIVE_SECONDS = gauge(
    "drwatch_recovery_window_objective_seconds",
    "The window the target promises: backups.retention.",
)

METRICS = (
    BASE_BACKUPS,
    BASE_BACKUP_NEWEST_TIMESTAMP_SECONDS,
    BASE_BACKUP_NEWEST_SIZE_BYTES,
    BASE_BACKUPS_FAILED,
    BASE_BACKUPS_INCOMPLETE,
    BASE_BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS,
    BASE_BACKUP_RUNNING_BYTES,
    BASE_BACKUP_MAX_DURATION_SECONDS,
    BASE_BACKUP_NEWEST_VERIFIED,
    RECOVERY_WINDOW_SECONDS,
    RECOVERY_WINDOW_START_TIMESTAMP_SECONDS,
    RECOVERY_WINDOW_OBJECTIVE_SECONDS,
)


def usable(backup: BaseBackup) -> bool:
    """Complete by its tool's word, readable, its chain whole."""
    return backup.error is None and backup.pending is None


def window_start(backups: list[BaseBackup], continuity: Continuity) -> BaseBackup | None:
    """The oldest good backup whose WAL is continuous from its first segment to the newest, along
    the current timeline's history."""
    for backup in backups:  # oldest first
        if usable(backup) and backup.wal_start and continuity.recovers(backup.wal_start):
            return backup
    return None


class BaseBackupsCheck(Check[None]):
    def __init__(
        self,
        config: BackupsConfig,
        base: Store,
        wal: Store | None,
        pg: PostgresConfig | None,
        full_restore: ObjectiveSpec | None,
        cache: VerdictCache,
    ) -> None:
        super().__init__(None)
        self.cache = cache  # pg_verifybackup verdicts, by backup_manifest
        self.config = config
        self.base = base
        self.wal = wal
        self.pg = pg
        self.full_restore = full_restore  # set when these backups are the target's full_restore

    def _ask_postgres(self) -> tuple[int, str | None]:
        """wal_segment_size, and on a primary the WAL file it writes now (its timeline is the
        current one, as the wal_archive check reads it)."""
        if self.pg is None:
            return self.config.wal_segment_size or DEFAULT_SEGMENT_SIZE, None
        with check_session(self.pg) as conn:
            row = fetch_one(
                conn,
                SERVER_WAL_SQL,
                what="wal_segment_size",
            )
        return self.config.wal_segment_size or int(row["size"]), row["writing"]

    def waits_on(self) -> str | None:
        return ", ".join(s.url for s in (self.base, self.wal) if s is not None)

    def run(self) -> Observation:
        deadline = time.monotonic() + self.config.timeout * 0.9
        segment_size, writing = self._ask_postgres()
        objects = list(self.base.list())
        layout: str | None = (
            detect_catalogue(objects)
            if self.config.base_layout == "auto"
            else self.config.base_layout
        )
        if layout is None:
            raise CheckError("config", f"no backup catalogue found in {self.base.url}")
        cipher = self.config.pgbackrest_cipher_pass
        backups = read_catalogue(
            self.base, objects, layout, segment_size, cipher.get_secret_value() if cipher else None
        )
        now = time.time()
        obs = Observation(Status.OK, "")
        finished = [b for b in backups if b.pending is None]  # running ones are counted apart
        for kind in sorted({b.kind for b in finished}):
            of_kind = [b for b in finished if b.kind == kind]
            obs.add(BASE_BACKUPS, len(of_kind), type=kind)
            obs.add(BASE_BACKUP_NEWEST_TIMESTAMP_SECONDS, of_kind[-1].stopped, type=kind)
        failed = [b for b in backups if b.error]
        obs.add(BASE_BACKUPS_FAILED, len(failed))
        for state in ("in_progress", "waiting_for_wal"):
            obs.add(BASE_BACKUPS_INCOMPLETE, sum(b.pending == state for b in backups), state=state)
        obs.add(BASE_BACKUP_MAX_DURATION_SECONDS, self._max_duration(finished))
        running = [b for b in backups if b.pending == "in_progress"]
        obs.add(BASE_BACKUP_RUNNING_BYTES, sum(b.size for b in running))
        if running:
            obs.add(BASE_BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS, min(b.started for b in running))
        obs.values.update(base_backups=len(backups), catalogue=layout)
        good = [b for b in backups if usable(b)]
        incomplete = _incomplete(backups)
        if not good:
            obs.status = Status.CRITICAL
            obs.summary = "; ".join(
                [f"no usable base backup in {self.base.url} ({layout})", *incomplete]
                + [f"{b.label}: {b.error}" for b in failed[-3:]]
            )
            if self.full_restore is not None:
                obs.exposures["full_restore"] = float("inf")
            if self.wal is not None:
                obs.exposures["pitr"] = float("inf")
            return obs
        newest = good[-1]
        obs.add(BASE_BACKUP_NEWEST_SIZE_BYTES, newest.size)
        if self.full_restore is not None:
            obs.exposures["full_restore"] = now - newest.stopped
        parts = [
            f"{count(len(backups), 'base backup')} ({layout}), newest {newest.label} "
            f"({newest.kind}, {format_bytes(newest.size)}) "
            f"{age_of(newest.stopped)} old"
        ]
        parts += incomplete
        problems = [f"{b.label}: {b.error}" for b in failed[-3:]]
        if layout == pg_basebackup.TOOL.layout and self.config.verify != "none":
            problems += self._verify_newest(obs, objects, newest, deadline)
        if self.wal is not None:
            window_problems, building = self._window(obs, backups, segment_size, writing, now)
            problems += window_problems
            parts += building
        obs.status = Status.WARNING if problems else Status.OK
        rpo = self.full_restore.rpo if self.full_restore else None
        if rpo is not None and now - newest.stopped > rpo:
            obs.status = Status.CRITICAL
            problems.append(f"older than the {format_duration(rpo)} full_restore objective")
        obs.summary = "; ".join(parts + problems)
        return obs

    def _max_duration(self, finished: list[BaseBackup]) -> float:
        if self.config.max_duration is not None:
            return self.config.max_duration
        newest = finished[-1] if finished else None
        return max(3600.0, 3 * (newest.stopped - newest.started)) if newest else 86400.0

    def _verify_newest(
        self, obs: Observation, objects: list[StoredObject], newest: BaseBackup, deadline: float
    ) -> list[str]:
        """pg_verifybackup on the newest backup, once (its verdict is cached by manifest)."""
        manifests = [o for o in objects if posixpath.basename(o.key) == pg_basebackup.MANIFEST]
        self.cache.retain({o.key for o in manifests})
        files = [o for o in objects if posixpath.dirname(o.key) == newest.label]
        manifest = next(o for o in files if posixpath.basename(o.key) == pg_basebackup.MANIFEST)
        verdict = self.cache.get(manifest)
        if verdict is None:
            if (version := newest.manifest_version or 1) > manifest_versions_read():
                return [
                    f"newest base backup not verified: its backup_manifest is version {version} "
                    f"(PostgreSQL 17+), {pg_verifybackup_version()} reads "
                    f"version {manifest_versions_read()}: install a newer PostgreSQL client"
                ]
            try:
                verdict = pg_basebackup.verify(
                    self.base, files, deadline, self.config.uncompressed_cap
                )
            except VerificationIncomplete as exc:
                return [f"newest base backup not verified yet: {exc}"]
            self.cache.put(manifest, verdict)
            self.cache.retain({o.key for o in manifests})
        obs.add(BASE_BACKUP_NEWEST_VERIFIED, verdict.ok)
        obs.values["newest_verified"] = verdict.ok
        obs.values["newest_verification"] = verdict.reason
        return [] if verdict.ok else [f"{newest.label} fails verification: {verdict.reason}"]

    def _window(
        self,
        obs: Observation,
        backups: list[BaseBackup],
        segment_size: int,
        writing: str | None,
        now: float,
    ) -> tuple[list[str], list[str]]:
        """(problems, what is said without one): a window shorter than the retention is one,
        unless it starts at the oldest backup there ever was here: a young estate's window is
        building up, and nothing that should be there is gone."""
        assert self.wal is not None
        listed = list(self.wal.list())
        archive = archive_files(listed, wal_layout(listed, self.config.wal_layout))
        continuity = read_continuity(archive, segment_size, history_reader(self.wal), writing)
        start = window_start(backups, continuity)
        retention = self.config.retention
        obs.add(RECOVERY_WINDOW_OBJECTIVE_SECONDS, retention)
        if start is None:
            obs.add(RECOVERY_WINDOW_SECONDS, 0)
            obs.exposures["pitr"] = float("inf")  # nothing to replay the archive onto
            return [
                f"no base backup has continuous WAL to {_newest(continuity)}: point-in-time "
                "recovery impossible"
            ], []
        window = now - start.stopped
        obs.add(RECOVERY_WINDOW_SECONDS, window)
        obs.add(RECOVERY_WINDOW_START_TIMESTAMP_SECONDS, start.stopped)
        obs.values.update(recovery_window_seconds=window, recovery_window_from=start.label)
        if window >= retention:
            return [], []
        oldest = min((b.started for b in backups), default=start.started)
        if start.started <= oldest:  # nothing older was ever here to be lost
            return [], [f"recovery window building up: {format_duration(window)} of "
                        f"{format_duration(retention)}"]  # fmt: skip
        return [
            f"recovery window {format_duration(window)} (from {start.label}), shorter than "
            f"the {format_duration(retention)} retention: older backups are gone or unusable"
        ], []


def _incomplete(backups: list[BaseBackup]) -> list[str]:
    """What runs or waits: said, never a failure (a 4-hour backup is not a broken one)."""
    said = {"in_progress": "running since", "waiting_for_wal": "copied, waiting for its WAL since"}
    return [
        f"{b.label} {said[b.pending]} {age_of(b.started)} ago ({format_bytes(b.size)} so far)"
        for b in backups
        if b.pending
    ][-3:]


def _newest(continuity: Continuity) -> str:
    newest = continuity.newest
    return f"the newest segment ({newest.name})" if newest else "now"


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None or not backups.base_store:
        return None
    dumps = bool(backups.store)
    check = BaseBackupsCheck(
        backups,
        context.store(backups.base_store),
        context.store(backups.wal_store) if backups.wal_store else None,
        context.target.postgres,
        None if dumps else context.objective("full_restore"),
        context.verdicts("base-verdicts"),
    )
    # Without a dump store, these backups are the target's full_restore.
    # The timeout of the backups section: a pg_basebackup backup is read in full once.
    return Planned(check, backups.interval, backups.timeout, scenarios=() if dumps else None)


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="the physical backups' catalogue (`backups.base_store`)",
    tells="base backups by type from pgBackRest's `backup.info` (encrypted too), WAL-G's "
    "sentinels, barman's and barman-cloud's `backup.info` or pg_basebackup manifests: newest per "
    "type, size, backups that are no recovery point (failed, unreadable, a broken chain), "
    "running or waiting for WAL, the newest pg_basebackup backup checked with "
    "`pg_verifybackup` (once; cached); the "
    "**recovery window** (from the oldest base backup whose WAL is continuous to "
    "now) against the retention; the `full_restore` exposure where there is no dump store, and "
    "PITR impossible (+Inf) when no base backup has continuous WAL",
    metrics=METRICS,
    scenarios=("full_restore",),
    plan=_plan,
)
