"""What a store's own settings say of its backups' safety, read-only: can they be deleted
(versioning, S3 Object Lock and its default retention), will a lifecycle rule delete or archive
them before their retention, and can they still be decrypted (the newest object's server-side
encryption; for SSE-KMS, the key's state from kms:DescribeKey). For file:// stores, what the
directory says: its append-only and immutable attributes, its owner and mode.

Calls: s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration,
s3:GetLifecycleConfiguration, s3:ListBucket, s3:GetObject (HEAD), kms:DescribeKey.
"""

from __future__ import annotations

import array
import fcntl
import os
from dataclasses import dataclass, field
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
}


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
    _encryption(found, store, aws)
    return found


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
        if "Days" in rule.get("Expiration", {}):
            found.expiration = sooner(found.expiration, rule["Expiration"]["Days"], name)
        if "NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {}):
            days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            found.noncurrent_expiration = sooner(found.noncurrent_expiration, days, name)
        for move in rule.get("Transitions", []):
            if move.get("StorageClass") in COLD and "Days" in move:
                found.cold_transition = sooner(
                    found.cold_transition, move["Days"], name, move["StorageClass"]
                )


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
