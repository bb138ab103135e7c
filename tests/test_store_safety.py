"""Backups that cannot be deleted nor lost with a key: Object Lock, versioning, lifecycle and
SSE-KMS read from moto's S3 and KMS; file:// stores' attributes from the real file system."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from checks.base import Status
from tests.helpers import AWS, CheckHarness, make_config, sample

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing-secret"}  # fmt: skip


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, **CREDENTIALS)


def _bucket(endpoint: str, locked: bool = False) -> str:
    name = f"backups-{uuid.uuid4().hex[:10]}"
    _client("s3", endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
    return name


def _run(endpoint: str, tmp_path: Path, bucket: str, **backups: object):  # type: ignore[no-untyped-def]
    loaded = make_config(
        [{"name": "app", "backups": {"store": f"s3://{bucket}/dumps/", **backups}}],
        aws={**AWS, "endpoint_url": endpoint},
        state_dir=str(tmp_path),
    )
    return CheckHarness(loaded).run("store_safety")


def _lock(endpoint: str, bucket: str, mode: str, days: int) -> None:
    _client("s3", endpoint).put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={"ObjectLockEnabled": "Enabled",
                                 "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}},
    )  # fmt: skip


def test_object_lock_as_long_as_the_retention_is_immutable(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = _bucket(moto_endpoint, locked=True)
    _lock(moto_endpoint, bucket, "COMPLIANCE", 30)
    result = _run(moto_endpoint, tmp_path, bucket, immutable="required")
    assert result.status == Status.OK, result.summary
    assert (
        sample(result, "drwatch_store_object_lock_retention_seconds", store="dumps") == 30 * 86400
    )
    assert sample(result, "drwatch_store_object_lock_compliance_mode", store="dumps") == 1
    assert sample(result, "drwatch_store_versioning_enabled", store="dumps") == 1
    assert sample(result, "drwatch_store_required_retention_seconds", store="dumps") == 30 * 86400


def test_no_lock_or_a_short_one_warns_where_immutability_is_required(
    moto_endpoint: str, tmp_path: Path
) -> None:
    plain = _bucket(moto_endpoint)
    unlocked = _run(moto_endpoint, tmp_path, plain, immutable="required")
    assert unlocked.status == Status.WARNING
    assert f"dumps (s3://{plain}/dumps/): no Object Lock default retention" in unlocked.summary
    assert "versioning is not enabled" in unlocked.summary
    assert sample(unlocked, "drwatch_store_object_lock_retention_seconds", store="dumps") == 0
    assert _run(moto_endpoint, tmp_path, plain).status == Status.OK  # not required: reported
    short = _bucket(moto_endpoint, locked=True)
    _lock(moto_endpoint, short, "GOVERNANCE", 7)
    result = _run(moto_endpoint, tmp_path, short, immutable="required")
    assert result.status == Status.WARNING
    assert "Object Lock keeps objects 7d, less than the 30d retention" in result.summary
    assert sample(result, "drwatch_store_object_lock_compliance_mode", store="dumps") == 0


def test_lifecycle_rules_that_delete_or_archive_before_the_retention_warn(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = _bucket(moto_endpoint)
    _client("s3", moto_endpoint).put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [
            {"ID": "tidy-dumps", "Status": "Enabled", "Filter": {"Prefix": "dumps/"},
             "Expiration": {"Days": 7}},
            {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Transitions": [{"Days": 10, "StorageClass": "GLACIER"}]},
            {"ID": "elsewhere", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
             "Expiration": {"Days": 1}},
            {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "dumps/"},
             "Expiration": {"Days": 2}},
        ]},
    )  # fmt: skip
    result = _run(moto_endpoint, tmp_path, bucket)
    assert result.status == Status.WARNING
    assert "lifecycle rule 'tidy-dumps' deletes objects after 7d, before the 30d retention" in (
        result.summary
    )
    assert "lifecycle rule 'cold' moves objects to GLACIER after 10d" in result.summary
    assert sample(result, "drwatch_store_lifecycle_expiration_seconds", store="dumps") == 7 * 86400
    assert "elsewhere" not in result.summary and "'off'" not in result.summary


def test_rules_by_date_and_for_noncurrent_versions_are_judged(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """A rule that expires or archives on a date expires what is written now that soon; a
    versioned store whose noncurrent versions go after a day keeps a deleted backup a day."""
    bucket = _bucket(moto_endpoint)
    s3 = _client("s3", moto_endpoint)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    soon = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=5)
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={"Rules": [
            {"ID": "on-a-date", "Status": "Enabled", "Filter": {"Prefix": "dumps/"},
             "Expiration": {"Date": soon}},
            {"ID": "archive-by-date", "Status": "Enabled", "Filter": {"Prefix": ""},
             "Transitions": [{"Date": soon, "StorageClass": "DEEP_ARCHIVE"}]},
            {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""},
             "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        ]},
    )  # fmt: skip
    result = _run(moto_endpoint, tmp_path, bucket)
    assert result.status == Status.WARNING, result.summary
    assert "lifecycle rule 'on-a-date' deletes objects after 4d" in result.summary
    assert "lifecycle rule 'archive-by-date' moves objects to DEEP_ARCHIVE after 4d" in (
        result.summary
    )
    assert "lifecycle rule 'old-versions' deletes noncurrent versions after 1d: a backup " in (
        result.summary
    )


def test_a_governance_lock_is_not_immutable(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = _bucket(moto_endpoint, locked=True)
    _lock(moto_endpoint, bucket, "GOVERNANCE", 30)
    result = _run(moto_endpoint, tmp_path, bucket, immutable="required")
    assert result.status == Status.WARNING
    assert "Object Lock is GOVERNANCE: whoever holds s3:BypassGovernanceRetention" in (
        result.summary
    )
    assert sample(result, "drwatch_store_object_lock_compliance_mode", store="dumps") == 0
    assert _run(moto_endpoint, tmp_path, bucket).status == Status.OK  # immutable: optional


def test_a_bucket_policy_that_lets_others_delete_is_named(
    moto_endpoint: str, tmp_path: Path
) -> None:
    bucket = _bucket(moto_endpoint)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
         "Action": ["s3:GetObject", "s3:Delete*"], "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ]}  # fmt: skip
    _client("s3", moto_endpoint).put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    result = _run(moto_endpoint, tmp_path, bucket)
    assert result.status == Status.WARNING, result.summary
    assert "the bucket policy lets everyone delete backups" in result.summary
    assert "lets arn:aws:iam::210987654321:root delete backups" in result.summary
    assert result.summary.count("bucket policy lets") == 2  # reading and denying are fine


@pytest.mark.parametrize("why", ["no such bucket", "no credentials", "refused endpoint"])
def test_settings_not_read_are_unknown_never_ok(
    moto_endpoint: str, tmp_path: Path, why: str
) -> None:
    bucket, aws = _bucket(moto_endpoint), {**AWS, "endpoint_url": moto_endpoint}
    if why == "no such bucket":
        bucket = f"missing-{uuid.uuid4().hex[:8]}"
    elif why == "no credentials":
        aws = {"endpoint_url": moto_endpoint, "region": "us-east-1", "max_attempts": 1}
    else:
        aws = {**AWS, "endpoint_url": "http://127.0.0.1:1", "max_attempts": 1}
    loaded = make_config(
        [{"name": "app", "backups": {"store": f"s3://{bucket}/dumps/"}}], aws=aws,
        state_dir=str(tmp_path),
    )  # fmt: skip
    result = CheckHarness(loaded).run("store_safety")
    assert result.status == Status.UNKNOWN, result.summary
    assert result.summary.startswith(f"dumps (s3://{bucket}/dumps/): settings not read: ")
    assert "nothing deletes" not in result.summary


def test_a_kms_key_disabled_or_pending_deletion_is_critical(
    moto_endpoint: str, tmp_path: Path
) -> None:
    kms = _client("kms", moto_endpoint)
    key = kms.create_key(Description="backups")["KeyMetadata"]["KeyId"]
    bucket = _bucket(moto_endpoint)
    _client("s3", moto_endpoint).put_object(
        Bucket=bucket, Key="dumps/app.dump", Body=b"PGDMP", ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key,
    )  # fmt: skip
    fine = _run(moto_endpoint, tmp_path, bucket)
    assert fine.status == Status.OK, fine.summary
    assert sample(fine, "drwatch_store_encrypted", store="dumps") == 1
    assert sample(fine, "drwatch_store_kms_key_usable", store="dumps") == 1
    kms.disable_key(KeyId=key)
    disabled = _run(moto_endpoint, tmp_path, bucket)
    assert disabled.status == Status.CRITICAL
    assert "app.dump is encrypted with KMS key" in disabled.summary
    assert "which is Disabled: the backups it encrypted will not decrypt" in disabled.summary
    kms.enable_key(KeyId=key)
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    pending = _run(moto_endpoint, tmp_path, bucket)
    assert pending.status == Status.CRITICAL and "PendingDeletion" in pending.summary
    assert sample(pending, "drwatch_store_kms_key_usable", store="dumps") == 0


def _file_run(tmp_path: Path, store: Path, **backups: object):  # type: ignore[no-untyped-def]
    loaded = make_config(
        [{"name": "app", "backups": {"store": f"file://{store}/", **backups}}],
        state_dir=str(tmp_path / "state"),
    )
    return CheckHarness(loaded).run("store_safety")


def test_a_file_store_says_what_its_directory_allows(tmp_path: Path) -> None:
    store = tmp_path / "dumps"
    store.mkdir()
    store.chmod(0o777)
    open_to_all = _file_run(tmp_path, store)
    assert open_to_all.status == Status.WARNING
    assert "anyone may write and delete there (mode 777)" in open_to_all.summary
    store.chmod(0o750)
    if (
        shutil.which("chattr") is None
        or subprocess.run(["chattr", "+a", str(store)], capture_output=True).returncode
    ):
        pytest.skip("no chattr +a on this file system")
    try:
        kept = _file_run(tmp_path, store, immutable="required")
        assert kept.status == Status.OK, kept.summary
        assert sample(kept, "drwatch_store_append_only", store="dumps") == 1
    finally:
        subprocess.run(["chattr", "-a", str(store)], check=True)
    loose = _file_run(tmp_path, store, immutable="required")
    assert loose.status == Status.WARNING and "not append-only" in loose.summary
