"""The `backups:` section: the dump store, the WAL store, the physical base backups and the
cross-region copy."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import BeforeValidator, ByteSize, Field, SecretStr, field_validator, model_validator

from core.config.aws import AwsConfig
from core.config.base import Strict
from core.durations import Duration


def _store_url(v: str | None) -> str | None:
    if v is None or v == "":
        return v
    parsed = urlparse(v)
    if parsed.scheme == "s3" and parsed.netloc:
        return v
    if parsed.scheme == "file" and parsed.path.startswith("/") and not parsed.netloc:
        return v
    raise ValueError("expected s3://bucket/prefix/ or file:///absolute/path/")


StoreUrl = Annotated[str, BeforeValidator(_store_url)]


class BackupsConfig(Strict):
    store: StoreUrl | None = None  # where the dumps are
    wal_store: StoreUrl | None = None  # where archive_command puts WAL
    # How the WAL store is laid out: by whom it is written; auto: from the names found.
    wal_layout: Literal["auto", "plain", "pgbackrest", "walg", "barman"] = "auto"
    # Physical base backups: a pgBackRest stanza's backup/<stanza>/, a WAL-G prefix, a
    # barman-cloud server prefix, or pg_basebackup -Ft directories with their backup_manifest.
    base_store: StoreUrl | None = None
    base_layout: Literal["auto", "pgbackrest", "walg", "barman", "pg_basebackup"] = "auto"
    # How long a base backup may run before DrwatchBackupStuck; default three times the newest
    # finished one's duration (at least an hour).
    max_duration: Duration | None = None
    # An encrypted pgBackRest repository's repo-cipher-pass (a secret: `_file` or ${VAR}).
    pgbackrest_cipher_pass: SecretStr | None = None
    replica_store: StoreUrl | None = None  # the cross-region copy of `store`
    wal_replica_store: StoreUrl | None = None  # the cross-region copy of `wal_store`
    # How the replica stores are reached (their region's endpoint, their own credentials);
    # unset: the `aws:` section.
    replica_aws: AwsConfig | None = None
    patterns: list[str] = Field(["*.dump"], min_length=1)  # which keys are dumps (fnmatch)
    retention: Duration = 30 * 86400.0  # the runbook: PostgreSQL backups kept 30 days
    replica_retention: Duration = 90 * 86400.0  # the runbook: the cross-region copy, 90 days
    # required: each store must hold its backups against deletion for their retention (S3
    # Object Lock and versioning; file:// stores append-only), else a WARNING.
    immutable: Literal["required", "optional"] = "optional"
    safety_interval: Duration = 3600.0  # store_safety: bucket settings change rarely
    verify: Literal["full", "toc", "none"] = "full"
    # The newest dump is suspect when smaller than this share of the median of recent ones.
    size_anomaly_ratio: float = Field(0.5, gt=0, lt=1)
    size_anomaly_window: int = Field(7, ge=2, le=100)
    wal_segment_size: int | None = Field(None, ge=1024 * 1024)  # else asked of PostgreSQL
    # The most a compressed backup (a plain dump, a base backup's tar) may inflate to before it
    # fails as a bomb; unset: max_inflation times its stored size, at least 1 GiB.
    max_uncompressed: ByteSize | None = None
    max_inflation: float = Field(100.0, ge=1.0, le=100_000.0)
    interval: Duration = 300.0
    timeout: Duration = 1800.0  # a full read of a big dump takes a while
    listing_timeout: Duration = 120.0  # wal_archive and replica_copy only list stores

    def uncompressed_cap(self, stored_bytes: int) -> int:
        """How many bytes a backup stored in `stored_bytes` may decompress to."""
        if self.max_uncompressed is not None:
            return int(self.max_uncompressed)
        return max(1 << 30, int(stored_bytes * self.max_inflation))

    @model_validator(mode="after")
    def _something_to_watch(self) -> BackupsConfig:
        if not (self.store or self.wal_store or self.base_store):
            raise ValueError("set at least one of store (dumps), wal_store, base_store")
        if self.replica_store and not self.store:
            raise ValueError("replica_store is the copy of store: set store too")
        if self.wal_replica_store and not self.wal_store:
            raise ValueError("wal_replica_store is the copy of wal_store: set wal_store too")
        return self

    @field_validator("wal_segment_size")
    @classmethod
    def _power_of_two(cls, v: int | None) -> int | None:
        if v is not None and v & (v - 1):
            raise ValueError("wal_segment_size must be a power of two (bytes)")
        return v
