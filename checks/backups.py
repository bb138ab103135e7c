"""Backups in a store: inventory, retention, size anomalies and integrity, newest first.

The runbook's `aws s3 ls | tail -5` and `pg_restore --list`, made trustworthy: `full_restore`
exposure counts from the newest backup that passed a full read, not the newest file.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.dump_progress import Progress, Running, in_progress
from checks.support.stores import FileStore, Store, StoredObject, is_backup, nested_prefixes
from checks.support.verdicts import VerdictCache
from checks.support.verify import Verdict, VerificationIncomplete, verify_dump
from core.config.schema import ObjectiveSpec
from core.config.stores import BackupsConfig
from core.durations import age_of, format_duration
from core.humanize import count, format_bytes
from core.metrics import counter, gauge

NAME = "backups"

BACKUPS = gauge("drwatch_backups", "Backups in the store (keys matching the configured patterns).")
BACKUPS_SIZE_BYTES = gauge("drwatch_backups_size_bytes", "Total size of the backups in the store.")
BACKUPS_IN_RETENTION = gauge(
    "drwatch_backups_in_retention", "Backups made inside the configured retention window."
)
BACKUP_RETENTION_SECONDS = gauge(
    "drwatch_backup_retention_seconds", "The configured retention window."
)
BACKUP_NEWEST_TIMESTAMP_SECONDS = gauge(
    "drwatch_backup_newest_timestamp_seconds", "When the newest backup was written."
)
BACKUP_NEWEST_SIZE_BYTES = gauge("drwatch_backup_newest_size_bytes", "Size of the newest backup.")
BACKUP_OLDEST_TIMESTAMP_SECONDS = gauge(
    "drwatch_backup_oldest_timestamp_seconds", "When the oldest backup was written."
)
BACKUP_OLDEST_SIZE_BYTES = gauge("drwatch_backup_oldest_size_bytes", "Size of the oldest backup.")
BACKUP_RECENT_MEDIAN_SIZE_BYTES = gauge(
    "drwatch_backup_recent_median_size_bytes",
    "Median size of the backups before the newest (the configured window).",
)
BACKUP_SIZE_ANOMALY = gauge(
    "drwatch_backup_size_anomaly",
    "1 if the newest backup is smaller than the configured share of the recent median.",
)
BACKUP_NEWEST_VERIFIED = gauge(
    "drwatch_backup_newest_verified",
    "1 if the newest backup passed integrity verification, 0 if it failed (absent: not verified).",
)
BACKUP_LAST_VERIFIED_TIMESTAMP_SECONDS = gauge(
    "drwatch_backup_last_verified_timestamp_seconds",
    "When the newest backup that passed integrity verification was written.",
)
BACKUP_VERIFICATION_DURATION_SECONDS = gauge(
    "drwatch_backup_verification_duration_seconds",
    "How long the newest backup's verification took.",
)
BACKUP_VERIFICATION_READ_BYTES = gauge(
    "drwatch_backup_verification_read_bytes",
    "Bytes read from the store to verify the newest backup.",
)
BACKUP_TOC_ENTRIES = gauge(
    "drwatch_backup_toc_entries",
    "Table-of-contents entries in the newest backup (pg_restore --list).",
)
BACKUPS_RUNNING = gauge(
    "drwatch_backups_running",
    "Dumps being written: growing since the last run, or under a temporary name (not backups "
    "yet: neither the newest nor verified).",
)
BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS = gauge(
    "drwatch_backup_running_since_timestamp_seconds",
    "Since when the oldest dump still being written has been seen running (absent: none).",
)
BACKUP_RUNNING_BYTES = gauge(
    "drwatch_backup_running_bytes", "What the dumps being written hold so far."
)
BACKUP_MAX_DURATION_SECONDS = gauge(
    "drwatch_backup_max_duration_seconds",
    "How long a dump may be seen running before DrwatchBackupStuck (backups.max_duration, "
    "default 6 hours).",
)
BACKUP_VERIFICATIONS_TOTAL = counter(
    "drwatch_backup_verifications_total",
    "Integrity verifications run by this drwatch, by result.",
    "result",
)

METRICS = (
    BACKUPS,
    BACKUPS_SIZE_BYTES,
    BACKUPS_IN_RETENTION,
    BACKUP_RETENTION_SECONDS,
    BACKUP_NEWEST_TIMESTAMP_SECONDS,
    BACKUP_NEWEST_SIZE_BYTES,
    BACKUP_OLDEST_TIMESTAMP_SECONDS,
    BACKUP_OLDEST_SIZE_BYTES,
    BACKUP_RECENT_MEDIAN_SIZE_BYTES,
    BACKUP_SIZE_ANOMALY,
    BACKUP_NEWEST_VERIFIED,
    BACKUP_LAST_VERIFIED_TIMESTAMP_SECONDS,
    BACKUP_VERIFICATION_DURATION_SECONDS,
    BACKUP_VERIFICATION_READ_BYTES,
    BACKUP_TOC_ENTRIES,
    BACKUPS_RUNNING,
    BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS,
    BACKUP_RUNNING_BYTES,
    BACKUP_MAX_DURATION_SECONDS,
    BACKUP_VERIFICATIONS_TOTAL,
)
DUMP_MAX_DURATION = 6 * 3600.0


@dataclass
class BackupsState:
    verifications: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0})
    progress: Progress = field(default_factory=Progress)  # dumps being written


class BackupsCheck(Check[BackupsState]):
    """Its state: verifications run by this drwatch, by result (a counter across reloads), and
    the dumps seen being written."""

    def __init__(
        self,
        config: BackupsConfig,
        store: Store,
        cache: VerdictCache,
        full_restore: ObjectiveSpec,
    ) -> None:
        super().__init__(BackupsState())
        self.config = config
        self.store = store
        # The WAL store, base backups or the cross-region copy may sit inside the dump store.
        self.exclude = nested_prefixes(
            store.url, config.wal_store, config.base_store, config.replica_store
        )
        self.cache = cache
        self.rpo = full_restore.rpo

    def waits_on(self) -> str | None:
        return self.store.url

    def run(self) -> Observation:
        deadline = time.monotonic() + self.config.timeout * 0.9
        objects = [
            o for o in self.store.list() if not any(o.key.startswith(p) for p in self.exclude)
        ]
        backups = sorted(
            (o for o in objects if is_backup(o.key, self.config.patterns)),
            key=lambda o: (o.modified, o.key),
        )
        now = time.time()
        obs = Observation(Status.OK, "")
        looked_at = set(self.state.progress.seen)
        in_place = isinstance(self.store, FileStore)  # an S3 object is listed once complete
        running = in_progress(
            objects, backups, self.config.patterns, self.state.progress, now, in_place
        )
        writing = {r.key for r in running}
        backups = [o for o in backups if o.key not in writing]
        first_look = in_place and bool(backups) and backups[-1].key not in looked_at
        if first_look and (unsettled := self._unsettled(backups[-1], deadline, now)):
            running.append(unsettled)
            backups = backups[:-1]
        self._running(obs, running)
        obs.add(BACKUPS, len(backups))
        obs.add(BACKUPS_SIZE_BYTES, sum(o.size for o in backups))
        in_retention = sum(1 for o in backups if o.modified >= now - self.config.retention)
        obs.add(BACKUPS_IN_RETENTION, in_retention)
        obs.add(BACKUP_RETENTION_SECONDS, self.config.retention)
        if not backups:
            obs.status = Status.CRITICAL
            obs.summary = (
                f"no backup matching {', '.join(self.config.patterns)} in {self.store.url}"
            )
            obs.exposures["full_restore"] = math.inf
            self._count_verifications(obs)
        else:
            obs.values.update(backups=len(backups), in_retention=in_retention)
            self._judge(obs, backups, deadline, now)
        if running:  # said, so "the newest is old" is read knowing one is on its way
            obs.summary += "; being written: " + ", ".join(
                f"{r.key} ({format_bytes(r.size)} so far, seen since {age_of(r.since)} ago)"
                for r in running
            )
        return obs

    def _judge(
        self, obs: Observation, backups: list[StoredObject], deadline: float, now: float
    ) -> None:
        """Newest and oldest, size anomaly, integrity and the `full_restore` exposure."""
        newest, oldest = backups[-1], backups[0]
        obs.add(BACKUP_NEWEST_TIMESTAMP_SECONDS, newest.modified)
        obs.add(BACKUP_NEWEST_SIZE_BYTES, newest.size)
        obs.add(BACKUP_OLDEST_TIMESTAMP_SECONDS, oldest.modified)
        obs.add(BACKUP_OLDEST_SIZE_BYTES, oldest.size)
        problems = self._size_anomaly(backups, obs)
        verified, newest_verdict, note = self._verify(backups, deadline)
        self.cache.retain({o.key for o in backups})
        self._count_verifications(obs)
        if newest_verdict is not None:
            obs.add(BACKUP_NEWEST_VERIFIED, newest_verdict.ok)
            obs.add(BACKUP_VERIFICATION_DURATION_SECONDS, newest_verdict.duration_seconds)
            obs.add(BACKUP_VERIFICATION_READ_BYTES, newest_verdict.bytes_read)
            obs.add(BACKUP_TOC_ENTRIES, newest_verdict.toc_entries)
            if not newest_verdict.ok:
                problems.append(
                    f"newest backup {newest.key} failed verification: {newest_verdict.reason}"
                )
        obs.values.update(
            newest_key=newest.key,
            newest_age_seconds=now - newest.modified,
            newest_verified=None if newest_verdict is None else newest_verdict.ok,
            last_verified_key=verified.key if verified else None,
        )
        exposure: float | None
        if self.config.verify == "none":
            exposure = now - newest.modified
        elif verified is not None:
            obs.add(BACKUP_LAST_VERIFIED_TIMESTAMP_SECONDS, verified.modified)
            exposure = now - verified.modified
        elif note:
            exposure = None  # verification could not run: unknown, not fine
        else:
            exposure = math.inf  # every backup failed: nothing restorable
            problems.append("no backup passes verification")
        obs.exposures["full_restore"] = exposure
        obs.status, obs.summary = self._verdict(backups, newest, exposure, problems, note, now)

    def _unsettled(self, newest: StoredObject, deadline: float, now: float) -> Running | None:
        """A dump written within the last interval that does not read whole may still be being
        written in place (`pg_dump -f`): running, read again at the next run, never a failed
        backup on the first look (its verdict is not kept)."""
        recent = now - newest.modified < self.config.interval
        if self.config.verify == "none" or not recent or self.cache.get(newest) is not None:
            return None
        try:
            verdict = verify_dump(
                self.store, newest.key, self.config.verify, deadline,
                self.config.uncompressed_cap(newest.size),
            )  # fmt: skip
        except VerificationIncomplete:
            return None  # judged as any unverified backup is
        if verdict.ok:
            self.cache.put(newest, verdict)
            self.state.verifications["ok"] += 1
            return None
        self.state.progress.since.setdefault(newest.key, now)
        return Running(newest.key, self.state.progress.since[newest.key], newest.size, False)

    def _count_verifications(self, obs: Observation) -> None:
        for result, n in self.state.verifications.items():
            obs.add(BACKUP_VERIFICATIONS_TOTAL, n, result=result)

    def _running(self, obs: Observation, running: list[Running]) -> None:
        obs.add(BACKUPS_RUNNING, len(running))
        obs.add(BACKUP_RUNNING_BYTES, sum(r.size for r in running))
        obs.add(BACKUP_MAX_DURATION_SECONDS, self.config.max_duration or DUMP_MAX_DURATION)
        if running:
            obs.add(BACKUP_RUNNING_SINCE_TIMESTAMP_SECONDS, running[0].since)
            obs.values["running"] = ", ".join(r.key for r in running)

    def _size_anomaly(self, backups: list[StoredObject], obs: Observation) -> list[str]:
        previous = backups[-1 - self.config.size_anomaly_window : -1]
        if len(previous) < 2:
            return []
        median = statistics.median(o.size for o in previous)
        obs.add(BACKUP_RECENT_MEDIAN_SIZE_BYTES, median)
        anomaly = backups[-1].size < self.config.size_anomaly_ratio * median
        obs.add(BACKUP_SIZE_ANOMALY, anomaly)
        if not anomaly:
            return []
        return [
            f"newest backup is {format_bytes(backups[-1].size)}, under "
            f"{self.config.size_anomaly_ratio:.0%} of the recent median {format_bytes(median)}"
        ]

    def _verify(
        self, backups: list[StoredObject], deadline: float
    ) -> tuple[StoredObject | None, Verdict | None, str]:
        """Newest first until one passes; each backup is read once (verdicts are cached).

        Past the newest good backup, one older unverified backup is read per run, so the whole
        retention window gets verified over time (the replica check and older restores need it)
        without one run reading 30 days of dumps.
        """
        if self.config.verify == "none":
            return None, None, ""
        newest_verdict: Verdict | None = None
        newest_ok: StoredObject | None = None
        for obj in reversed(backups):
            verdict = self.cache.get(obj)
            if verdict is None:
                try:
                    verdict = self._read(obj, deadline)
                except VerificationIncomplete as exc:
                    return newest_ok, newest_verdict, "" if newest_ok else str(exc)
                if newest_ok is not None:
                    break  # the one older backup this run reads
            if obj is backups[-1]:
                newest_verdict = verdict
            if verdict.ok and newest_ok is None:
                newest_ok = obj
        return newest_ok, newest_verdict, ""

    def _read(self, obj: StoredObject, deadline: float) -> Verdict:
        """Verifies and records one backup; VerificationIncomplete when there is no verdict."""
        cap = self.config.uncompressed_cap(obj.size)
        verdict = verify_dump(self.store, obj.key, self.config.verify, deadline, cap)
        self.cache.put(obj, verdict)
        self.state.verifications["ok" if verdict.ok else "failed"] += 1
        return verdict

    def _verdict(
        self,
        backups: list[StoredObject],
        newest: StoredObject,
        exposure: float | None,
        problems: list[str],
        note: str,
        now: float,
    ) -> tuple[Status, str]:
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        parts = [
            f"{count(len(backups), 'backup')} ({format_bytes(sum(o.size for o in backups))}), "
            f"newest {newest.key} {age_of(newest.modified)} old "
            f"({format_bytes(newest.size)})"
        ]
        if exposure is None:
            parts.append(f"full_restore exposure unknown: {note}")
        elif math.isinf(exposure):
            parts.append("full_restore exposure +Inf")
        else:
            parts.append(f"full_restore exposure {format_duration(exposure)}{objective}")
        parts += problems
        status = Status.WARNING if problems or exposure is None else Status.OK
        if exposure is not None and self.rpo is not None and exposure > self.rpo:
            status = Status.CRITICAL
        return status, "; ".join(parts)


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None or not backups.store:
        return None
    check = BackupsCheck(
        backups,
        context.store(backups.store),
        context.verdicts("verdicts"),
        context.objective("full_restore"),
    )
    return Planned(check, backups.interval, backups.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="the backup store (`s3://` or `file://`)",
    tells="count, total size, newest and oldest backup, backups inside the retention window, a "
    "size anomaly (newest dump much smaller than the recent median), and **integrity**: each dump "
    "read back in full once, newest first; the **`full_restore` exposure** counts from the newest "
    "backup that passed",
    metrics=METRICS,
    scenarios=("full_restore",),
    plan=_plan,
)
