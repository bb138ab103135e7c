"""What a store's own settings say of its backups' safety, read-only: can they be deleted
(versioning, S3 Object Lock and its default retention), will a lifecycle rule delete or archive
them before their retention, and can they still be decrypted (the newest object's server-side
encryption; for SSE-KMS, the key's state from kms:DescribeKey). For file:// stores, what the
directory says: its append-only and immutable attributes, its owner and mode.

Lifecycle rules are read whether they count days or name a date; the bucket policy is read for
statements that let everyone, or another account, delete objects.

Calls: s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration,
s3:GetLifecycleConfiguration, s3:GetBucketPolicy, s3:ListBucket, s3:GetObject (HEAD),
kms:DescribeKey, sts:GetCallerIdentity (whose account is "another").
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.support.aws import aws_client, aws_error
from checks.support.stores import FileStore, S3Store, Store
from core.config.aws import AwsConfig

DAY = 86400.0
FS_IOC_GETFLAGS = 0x80086601  # linux/fs.h, as lsattr reads them
FS_IMMUTABLE_FL = 0x00000010
FS_APPEND_FL = 0x00000020
# Classes an object must be restored from (hours) before a drill or a recovery can read it.
COLD = {"GLACIER", "DEEP_ARCHIVE"}
_MISSING = {
    "ObjectLockConfigurationNotFoundError",
    "NoSuchLifecycleConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchBucketPolicy",
}
# What lets a principal delete a backup or its versions.
_DELETES = {"s3:deleteobject", "s3:deleteobjectversion", "s3:*", "*", "s3:delete*",
            "s3:putlifecycleconfiguration", "s3:bypassgovernanceretention"}  # fmt: skip


@dataclass
class StoreSafety:
    kind: str  # s3 or file
    versioning: str | None = None  # Enabled, Suspended, or None (never enabled)
    lock_mode: str | None = None  # GOVERNANCE or COMPLIANCE: the default retention's mode
    lock_retention: float | None = None  # the default retention, seconds (None: no lock)
    # (seconds, rule id): the soonest a lifecycle rule deletes a current or noncurrent version,
    # or moves it to a class a recovery must first restore from.
    expiration: tuple[float, str] | None = None
    noncurrent_expiration: tuple[float, str] | None = None
    cold_transition: tuple[float, str, str] | None = None  # seconds, rule id, storage class
    encryption: str | None = None  # the newest object's: aws:kms, AES256, or None
    kms_key: str | None = None
    kms_key_state: str | None = None  # Enabled, Disabled, PendingDeletion...
    newest: str | None = None  # the object whose encryption was read
    append_only: bool | None = None  # file:// (None: attributes not readable there)
    immutable: bool | None = None
    owner_uid: int | None = None
    mode: int | None = None
    # Who else the bucket policy lets delete objects: "everyone" or an account id, with
    # whether a condition restricts it.
    policy_deleters: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read, said once


def read_safety(store: Store, aws: AwsConfig) -> StoreSafety:
    if isinstance(store, S3Store):
        return _s3(store, aws)
    assert isinstance(store, FileStore)
    return _file(store.root)


def _file(root: Path) -> StoreSafety:
    found = StoreSafety("file")
    st = root.stat()
    found.owner_uid, found.mode = st.st_uid, st.st_mode & 0o7777
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            flags = array.array("l", [0])
            fcntl.ioctl(fd, FS_IOC_GETFLAGS, flags, True)
        finally:
            os.close(fd)
        found.append_only = bool(flags[0] & FS_APPEND_FL)
        found.immutable = bool(flags[0] & FS_IMMUTABLE_FL)
    except OSError:  # tmpfs, overlay, NFS: no such attributes to read
        found.notes.append("append-only attribute not readable on this file system")
    return found


def _call(store: S3Store, action: str, method: str, **kwargs: Any) -> dict[str, Any] | None:
    """The response, or None when the bucket has no such configuration."""
    try:
        return dict(getattr(store.client, method)(Bucket=store.bucket, **kwargs))
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in _MISSING:
            return None
        raise aws_error(f"store {store.url}", exc, action) from None
    except BotoCoreError as exc:
        raise aws_error(f"store {store.url}", exc, action) from None


def _s3(store: S3Store, aws: AwsConfig) -> StoreSafety:
    found = StoreSafety("s3")
    versioning = _call(store, "get versioning", "get_bucket_versioning") or {}
    found.versioning = versioning.get("Status")
    lock = _call(store, "get object lock", "get_object_lock_configuration") or {}
    rule = lock.get("ObjectLockConfiguration", {}).get("Rule", {}).get("DefaultRetention")
    if rule:
        found.lock_mode = rule.get("Mode")
        found.lock_retention = (
            float(rule.get("Days", 0)) * DAY or float(rule.get("Years", 0)) * 365 * DAY
        )
    lifecycle = _call(store, "get lifecycle", "get_bucket_lifecycle_configuration") or {}
    _lifecycle(found, lifecycle.get("Rules", []), store.prefix)
    policy = _call(store, "get bucket policy", "get_bucket_policy") or {}
    if policy.get("Policy"):
        found.policy_deleters = _deleters(json.loads(policy["Policy"]), _own_account(aws, found))
    _encryption(found, store, aws)
    return found


def _own_account(aws: AwsConfig, found: StoreSafety) -> str | None:
    """drwatch's own account (sts:GetCallerIdentity): any other account is another."""
    try:
        sts = aws_client("sts", aws, aws.region, "sts")
        return str(sts.get_caller_identity()["Account"])
    except (BotoCoreError, ClientError, KeyError):
        found.notes.append("own account not readable (sts:GetCallerIdentity): accounts named")
        return None


def _deleters(policy: dict[str, Any], own: str | None) -> list[str]:
    """Who an Allow statement lets delete objects, other than the bucket's own account."""
    found: list[str] = []
    statements = policy.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(str(a).lower() in _DELETES for a in actions):
            continue
        condition = " (under a condition)" if statement.get("Condition") else ""
        for who in _principals(statement.get("Principal")):
            if who == "*":
                found.append(f"everyone{condition}")
            elif own is None or own not in who:
                found.append(f"{who}{condition}")
    return found


def _principals(principal: Any) -> list[str]:
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        names: list[str] = []
        for value in principal.values():
            names += [value] if isinstance(value, str) else list(value)
        return ["*" if name == "*" else str(name) for name in names]
    return []


def _applies(rule: dict[str, Any], prefix: str) -> bool:
    """Whether an enabled rule reaches objects under `prefix` (tag filters are taken to)."""
    if rule.get("Status") != "Enabled":
        return False
    where = rule.get("Filter", {})
    rule_prefix = where.get("Prefix", where.get("And", {}).get("Prefix", rule.get("Prefix", "")))
    return prefix.startswith(rule_prefix) or rule_prefix.startswith(prefix)


def _lifecycle(found: StoreSafety, rules: list[dict[str, Any]], prefix: str) -> None:
    def sooner(current: Any, days: float, *rest: str) -> Any:
        seconds = days * DAY
        return (seconds, *rest) if current is None or seconds < current[0] else current

    for rule in (r for r in rules if _applies(r, prefix)):
        name = str(rule.get("ID") or "unnamed")
        if (days := _days(rule.get("Expiration", {}))) is not None:
            found.expiration = sooner(found.expiration, days, name)
        if "NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {}):
            days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            found.noncurrent_expiration = sooner(found.noncurrent_expiration, days, name)
        for move in rule.get("Transitions", []):
            if move.get("StorageClass") in COLD and (days := _days(move)) is not None:
                found.cold_transition = sooner(
                    found.cold_transition, days, name, move["StorageClass"]
                )


def _days(action: dict[str, Any]) -> float | None:
    """After how many days an expiration or transition acts on an object written now: its
    `Days`, or what is left until its `Date` (a date passed: at once)."""
    if "Days" in action:
        return float(action["Days"])
    if "Date" in action:
        when = action["Date"]
        stamp = when.timestamp() if isinstance(when, datetime) else float("nan")
        return max(0.0, (stamp - time.time()) / DAY) if stamp == stamp else 0.0
    return None


def _encryption(found: StoreSafety, store: S3Store, aws: AwsConfig) -> None:
    newest = max(store.list(), key=lambda o: o.modified, default=None)
    if newest is None:
        found.notes.append("no object yet to read the encryption of")
        return
    found.newest = newest.key
    try:
        head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + newest.key)
    except (BotoCoreError, ClientError) as exc:
        raise aws_error(f"store {store.url}", exc, f"head {newest.key}") from None
    found.encryption = head.get("ServerSideEncryption")
    found.kms_key = head.get("SSEKMSKeyId")
    if found.encryption == "aws:kms" and found.kms_key:
        # The key's own region (its ARN's): a bucket's key lives where the bucket does.
        parts = found.kms_key.split(":")
        region = parts[3] if found.kms_key.startswith("arn:") and len(parts) > 3 else aws.region
        kms = aws_client("kms", aws, region, f"store {store.url}")
        try:
            meta = kms.describe_key(KeyId=found.kms_key)["KeyMetadata"]
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(f"store {store.url}", exc, "describe its KMS key") from None
        found.kms_key_state = meta.get("KeyState") or (
            "Enabled" if meta.get("Enabled") else "Disabled"
        )
