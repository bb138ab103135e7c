"""Cross-region copy: is the newest verified backup in the replica store, whole?

`cross_region` exposure counts from the newest verified backup present in the replica with the
same size and the same content: the same ETag where both are plain (non-multipart) ETags, else
the same SHA-256 (checks.support.copies).
"""

from __future__ import annotations

import time

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.copies import DigestCache, is_copy, plain_etags
from checks.support.stores import Store, StoredObject, is_backup
from checks.support.verdicts import VerdictCache
from core.config.schema import ObjectiveSpec
from core.config.stores import BackupsConfig
from core.durations import format_duration
from core.metrics import gauge

NAME = "replica_copy"

REPLICA_BACKUPS = gauge("drwatch_replica_backups", "Backups in the replica (cross-region) store.")
REPLICA_NEWEST_VERIFIED_PRESENT = gauge(
    "drwatch_replica_newest_verified_present",
    "1 if the newest verified backup is in the replica store with the same size (and ETag).",
)
REPLICA_LAST_COPIED_TIMESTAMP_SECONDS = gauge(
    "drwatch_replica_last_copied_timestamp_seconds",
    "When the newest verified backup that the replica holds intact was written.",
)
REPLICA_COPY_LAG_SECONDS = gauge(
    "drwatch_replica_copy_lag_seconds",
    "How far the replica's newest intact verified backup trails the primary store's newest "
    "verified backup.",
)

METRICS = (
    REPLICA_BACKUPS,
    REPLICA_NEWEST_VERIFIED_PRESENT,
    REPLICA_LAST_COPIED_TIMESTAMP_SECONDS,
    REPLICA_COPY_LAG_SECONDS,
)


class ReplicaCopyCheck(Check[None]):
    def __init__(
        self,
        config: BackupsConfig,
        primary: Store,
        replica: Store,
        verdicts: VerdictCache,
        cross_region: ObjectiveSpec,
        digests: DigestCache,
    ) -> None:
        super().__init__(None)
        self.config = config
        self.primary = primary
        self.replica = replica
        self.verdicts = verdicts
        self.digests = digests
        self.rpo = cross_region.rpo

    def _verified(self, obj: StoredObject) -> bool:
        if self.config.verify == "none":
            return True
        verdict = self.verdicts.get(obj)
        return verdict is not None and verdict.ok

    def _copied(self, original: StoredObject, copies: dict[str, StoredObject]) -> bool:
        return is_copy(self.primary, original, self.replica, copies.get(original.key), self.digests)

    def waits_on(self) -> str | None:
        return self.replica.url

    def run(self) -> Observation:
        backups = sorted(
            (o for o in self.primary.list() if is_backup(o.key, self.config.patterns)),
            key=lambda o: (o.modified, o.key),
        )
        verified = [o for o in backups if self._verified(o)]
        copies = {o.key: o for o in self.replica.list() if is_backup(o.key, self.config.patterns)}
        self.digests.retain(
            {self.primary.url + o.key for o in backups} | {self.replica.url + k for k in copies}
        )
        obs = Observation(Status.OK, "")
        obs.add(REPLICA_BACKUPS, len(copies))
        if not backups:
            obs.status = Status.WARNING
            obs.summary = "no backup in the primary store (see the backups check)"
            obs.exposures["cross_region"] = None
            return obs
        if not verified:
            # Right after a start the backups check has not read them yet: the copies are
            # judged as they are, the exposure waits for a verdict (no flip at every start).
            return self._copies(obs, backups, copies, proven=False)
        return self._copies(obs, verified, copies, proven=True)

    def _copies(
        self,
        obs: Observation,
        candidates: list[StoredObject],
        copies: dict[str, StoredObject],
        proven: bool,
    ) -> Observation:
        verified = candidates
        now = time.time()
        newest = verified[-1]
        present = next((o for o in reversed(verified) if self._copied(o, copies)), None)
        obs.add(REPLICA_NEWEST_VERIFIED_PRESENT, present is newest)
        obs.values.update(
            newest_verified=newest.key, newest_copied=present.key if present else None
        )
        objective = f" (objective {format_duration(self.rpo)})" if self.rpo is not None else ""
        if present is None:
            obs.exposures["cross_region"] = float("inf")
            obs.status = Status.CRITICAL
            kind = "verified backup" if proven else "backup"
            obs.summary = f"no {kind} is intact in {self.replica.url}"
            return obs
        exposure = now - present.modified
        obs.add(REPLICA_LAST_COPIED_TIMESTAMP_SECONDS, present.modified)
        obs.add(REPLICA_COPY_LAG_SECONDS, newest.modified - present.modified)
        if not proven:
            obs.exposures["cross_region"] = None
            parts = ["backups not verified yet (the backups check reads them first)"]
        else:
            obs.exposures["cross_region"] = exposure
            parts = [f"cross_region exposure {format_duration(exposure)}{objective}"]
        if present is not newest:
            copy = copies.get(newest.key)
            why = "missing" if copy is None else (
                f"differs ({copy.size} vs {newest.size} bytes)" if copy.size != newest.size
                else "differs in content (SHA-256)" if not plain_etags(newest, copy)
                else f"differs (ETag {copy.etag} vs {newest.etag})"
            )  # fmt: skip
            kind = "verified backup" if proven else "backup"
            parts.append(f"newest {kind} {newest.key} {why} in {self.replica.url}")
            obs.status = Status.WARNING
        else:
            parts.append(f"newest {'verified ' if proven else ''}backup {newest.key} copied")
        if proven and self.rpo is not None and exposure > self.rpo:
            obs.status = Status.CRITICAL
        obs.summary = "; ".join(parts)
        return obs


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None or not backups.store or not backups.replica_store:
        return None
    check = ReplicaCopyCheck(
        backups,
        context.store(backups.store),
        context.store(backups.replica_store, backups.replica_aws),
        context.verdicts("verdicts"),  # the backups check's
        context.objective("cross_region"),
        DigestCache(context.state_file("digests")),
    )
    # A store without checksums is read to compare content: as long as a full verification.
    return Planned(check, backups.interval, backups.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="the cross-region store",
    tells="whether the newest verified backup is there, whole; the copy lag and the "
    "**`cross_region` exposure**",
    metrics=METRICS,
    scenarios=("cross_region",),
    plan=_plan,
    after="backups",  # it reads the verdicts the backups check records
)
