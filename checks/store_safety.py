"""Backups that cannot be deleted, nor lost with a key: each store's versioning, S3 Object Lock
and its default retention, lifecycle rules that would delete or archive backups before their
retention, and the newest object's encryption with its KMS key's state; for file:// stores,
the directory's append-only attribute, owner and mode.

A key disabled or pending deletion is CRITICAL (what it encrypted will not decrypt);
`backups.immutable: required` makes a store without Object Lock at least as long as its
retention (and versioning), or whose lock is GOVERNANCE (bypassable), a WARNING, as is a lifecycle
rule that deletes, deletes noncurrent versions of a versioned store, or moves to Glacier sooner
than the retention (by days or by date), a bucket policy that lets everyone or another account
delete, and a world-writable directory. A store whose settings could not be read is UNKNOWN,
named with the reason: never "nothing deletes them early".
"""

from __future__ import annotations

from dataclasses import dataclass

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned
from checks.support.store_safety import StoreSafety, read_safety
from checks.support.stores import Store
from core.config.aws import AwsConfig
from core.config.stores import BackupsConfig
from core.durations import format_duration
from core.errors import CheckError
from core.metrics import gauge

NAME = "store_safety"
STORE = ("store",)

STORE_VERSIONING_ENABLED = gauge(
    "drwatch_store_versioning_enabled", "1 if the bucket keeps every version.", *STORE
)
STORE_OBJECT_LOCK_RETENTION_SECONDS = gauge(
    "drwatch_store_object_lock_retention_seconds",
    "The bucket's S3 Object Lock default retention (0 without one).",
    *STORE,
)
STORE_OBJECT_LOCK_COMPLIANCE_MODE = gauge(
    "drwatch_store_object_lock_compliance_mode",
    "1 if the default retention is COMPLIANCE (no one can shorten it), 0 if GOVERNANCE.",
    *STORE,
)
STORE_REQUIRED_RETENTION_SECONDS = gauge(
    "drwatch_store_required_retention_seconds",
    "How long the store's backups must be kept (backups.retention; the replicas' "
    "replica_retention; Redis snapshots' redis.retention).",
    *STORE,
)
STORE_IMMUTABLE_REQUIRED = gauge(
    "drwatch_store_immutable_required", "1 if backups.immutable is `required`.", *STORE
)
STORE_LIFECYCLE_EXPIRATION_SECONDS = gauge(
    "drwatch_store_lifecycle_expiration_seconds",
    "The soonest a lifecycle rule deletes the store's objects (absent without one).",
    *STORE,
)
STORE_LIFECYCLE_COLD_TRANSITION_SECONDS = gauge(
    "drwatch_store_lifecycle_cold_transition_seconds",
    "The soonest a lifecycle rule moves objects to Glacier or Deep Archive (a recovery must "
    "restore them first).",
    *STORE,
)
STORE_ENCRYPTED = gauge(
    "drwatch_store_encrypted", "1 if the newest object is encrypted server-side.", *STORE
)
STORE_KMS_KEY_USABLE = gauge(
    "drwatch_store_kms_key_usable",
    "1 if the newest object's KMS key is enabled, 0 if disabled or pending deletion.",
    *STORE,
)
STORE_APPEND_ONLY = gauge(
    "drwatch_store_append_only",
    "file:// stores: 1 if the directory is append-only or immutable (chattr +a / +i).",
    *STORE,
)
STORE_WORLD_WRITABLE = gauge(
    "drwatch_store_world_writable", "file:// stores: 1 if anyone may write the directory.", *STORE
)

METRICS = (
    STORE_VERSIONING_ENABLED,
    STORE_OBJECT_LOCK_RETENTION_SECONDS,
    STORE_OBJECT_LOCK_COMPLIANCE_MODE,
    STORE_REQUIRED_RETENTION_SECONDS,
    STORE_IMMUTABLE_REQUIRED,
    STORE_LIFECYCLE_EXPIRATION_SECONDS,
    STORE_LIFECYCLE_COLD_TRANSITION_SECONDS,
    STORE_ENCRYPTED,
    STORE_KMS_KEY_USABLE,
    STORE_APPEND_ONLY,
    STORE_WORLD_WRITABLE,
)


@dataclass(frozen=True)
class WatchedStore:
    role: str  # dumps, wal, base, replica, wal_replica, snapshots: the `store` label
    store: Store
    aws: AwsConfig
    retention: float


class StoreSafetyCheck(Check[None]):
    def __init__(self, stores: list[WatchedStore], immutable: bool) -> None:
        super().__init__(None)
        self.stores = stores
        self.immutable = immutable

    def run(self) -> Observation:
        obs = Observation(Status.OK, "")
        critical, warnings, unread = [], [], []
        for watched in self.stores:
            try:
                found = read_safety(watched.store, watched.aws)
            except (CheckError, OSError) as exc:
                error = exc if isinstance(exc, CheckError) else CheckError("query", str(exc))
                obs.errors.append(error)
                # Not read is not safe: said by name, never "nothing deletes them early".
                unread.append(f"{watched.role} ({watched.store.url}): settings not read: {error}")
                continue
            bad, doubtful = self._judge(obs, watched, found)
            critical += bad
            warnings += doubtful
        obs.status = (
            Status.CRITICAL if critical else Status.UNKNOWN if unread
            else Status.WARNING if warnings else Status.OK
        )  # fmt: skip
        problems = critical + unread + warnings
        obs.summary = "; ".join(problems) if problems else (
            f"{len(self.stores)} store(s): nothing deletes or locks out their backups early"
        )  # fmt: skip
        return obs

    def _judge(
        self, obs: Observation, watched: WatchedStore, found: StoreSafety
    ) -> tuple[list[str], list[str]]:
        k = {"store": watched.role}
        need, where = watched.retention, f"{watched.role} ({watched.store.url})"
        obs.add(STORE_REQUIRED_RETENTION_SECONDS, need, **k)
        obs.add(STORE_IMMUTABLE_REQUIRED, self.immutable, **k)
        if found.kind == "file":
            return [], self._file(obs, found, where, k)
        critical, warnings = [], []
        obs.add(STORE_VERSIONING_ENABLED, found.versioning == "Enabled", **k)
        obs.add(STORE_OBJECT_LOCK_RETENTION_SECONDS, found.lock_retention or 0.0, **k)
        if found.lock_mode:
            obs.add(STORE_OBJECT_LOCK_COMPLIANCE_MODE, found.lock_mode == "COMPLIANCE", **k)
        if self.immutable:
            if not found.lock_retention:
                warnings.append(f"{where}: no Object Lock default retention (immutable: required)")
            elif found.lock_retention < need:
                warnings.append(
                    f"{where}: Object Lock keeps objects {format_duration(found.lock_retention)}, "
                    f"less than the {format_duration(need)} retention"
                )
            if found.lock_retention and found.lock_mode == "GOVERNANCE":
                warnings.append(
                    f"{where}: Object Lock is GOVERNANCE: whoever holds "
                    "s3:BypassGovernanceRetention can delete locked backups (immutable: required "
                    "wants COMPLIANCE)"
                )
            if found.versioning != "Enabled":
                warnings.append(f"{where}: versioning is not enabled (immutable: required)")
        if found.expiration:
            obs.add(STORE_LIFECYCLE_EXPIRATION_SECONDS, found.expiration[0], **k)
            if found.expiration[0] < need:
                warnings.append(
                    f"{where}: lifecycle rule {found.expiration[1]!r} deletes objects after "
                    f"{format_duration(found.expiration[0])}, before the "
                    f"{format_duration(need)} retention"
                )
        if found.noncurrent_expiration and found.versioning == "Enabled":
            seconds, rule = found.noncurrent_expiration
            if seconds < need:
                warnings.append(
                    f"{where}: lifecycle rule {rule!r} deletes noncurrent versions after "
                    f"{format_duration(seconds)}: a backup deleted or overwritten is gone before "
                    f"the {format_duration(need)} retention"
                )
        for who in found.policy_deleters:
            warnings.append(f"{where}: the bucket policy lets {who} delete backups")
        if found.cold_transition:
            seconds, rule, where_to = found.cold_transition
            obs.add(STORE_LIFECYCLE_COLD_TRANSITION_SECONDS, seconds, **k)
            if seconds < need:
                warnings.append(
                    f"{where}: lifecycle rule {rule!r} moves objects to {where_to} after "
                    f"{format_duration(seconds)}: a recovery must restore them first"
                )
        if found.newest is not None:
            obs.add(STORE_ENCRYPTED, found.encryption is not None, **k)
        if found.kms_key_state is not None:
            obs.add(STORE_KMS_KEY_USABLE, found.kms_key_state == "Enabled", **k)
            if found.kms_key_state != "Enabled":
                critical.append(
                    f"{where}: {found.newest} is encrypted with KMS key {found.kms_key}, which is "
                    f"{found.kms_key_state}: the backups it encrypted will not decrypt"
                )
        obs.values[f"{watched.role}_encryption"] = found.encryption or "none"
        return critical, warnings

    def _file(
        self, obs: Observation, found: StoreSafety, where: str, k: dict[str, str]
    ) -> list[str]:
        warnings = []
        assert found.mode is not None
        if found.append_only is not None:
            obs.add(STORE_APPEND_ONLY, found.append_only or bool(found.immutable), **k)
            if self.immutable and not (found.append_only or found.immutable):
                warnings.append(f"{where}: not append-only (chattr +a; immutable: required)")
        world = bool(found.mode & 0o002)
        obs.add(STORE_WORLD_WRITABLE, world, **k)
        if world:
            warnings.append(f"{where}: anyone may write and delete there (mode {found.mode:o})")
        return warnings


def _watched(context: BuildContext, backups: BackupsConfig) -> list[WatchedStore]:
    aws, replica_aws = context.config.aws, backups.replica_aws or context.config.aws
    redis = context.target.redis
    wanted = [
        ("dumps", backups.store, aws, backups.retention),
        ("wal", backups.wal_store, aws, backups.retention),
        ("base", backups.base_store, aws, backups.retention),
        ("replica", backups.replica_store, replica_aws, backups.replica_retention),
        ("wal_replica", backups.wal_replica_store, replica_aws, backups.replica_retention),
        ("snapshots", redis.snapshot_store if redis else None, aws,
         redis.retention if redis else 0.0),
    ]  # fmt: skip
    return [
        WatchedStore(role, context.store(url, store_aws), store_aws, retention)
        for role, url, store_aws, retention in wanted
        if url
    ]


def _plan(context: BuildContext) -> Planned | None:
    backups = context.target.backups
    if backups is None:
        return None
    check = StoreSafetyCheck(_watched(context, backups), backups.immutable == "required")
    return Planned(check, backups.safety_interval, backups.listing_timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="backups",
    source="each store's settings: versioning, S3 Object Lock, lifecycle rules, the newest "
    "object's encryption and its KMS key (`file://`: the directory's attributes and mode)",
    tells="whether the backups can be deleted early, archived out of reach or lost with a key",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
