"""Backup stores behind one small interface: `s3://bucket/prefix/` and `file:///path/`.

Listing pages through everything (10,000+ objects), reading streams in chunks (a dump is never
held in memory), and every S3 call has connect/read timeouts and bounded retries. Errors become
CheckErrors that name the store, never a credential.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
)

from checks.support.aws import aws_client, aws_error
from core.config.aws import AwsConfig
from core.errors import CheckError

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the store's prefix
    size: int
    modified: float  # unix time
    etag: str | None = None
    # What changes with any rewrite where there is no ETag: a file's inode, ctime and mtime
    # (ctime cannot be set back by a user, unlike mtime).
    version: str | None = None


class Store(Protocol):
    url: str

    def list(self) -> Iterator[StoredObject]: ...

    def chunks(self, key: str) -> Iterator[bytes]: ...

    def head(self, key: str) -> StoredObject | None: ...


class FileStore:
    """A local or mounted directory, as for a pgBackRest-style posix repository."""

    def __init__(self, url: str, root: Path) -> None:
        self.url = url
        self.root = root

    def list(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            raise CheckError("config", f"store {self.url}: {self.root} is not a directory")
        try:
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    path = Path(dirpath) / name
                    try:
                        st = path.stat()
                    except FileNotFoundError:
                        continue  # removed while listing (retention at work)
                    key = path.relative_to(self.root).as_posix()
                    yield StoredObject(key, st.st_size, st.st_mtime, None, _version(st))
        except PermissionError as exc:
            raise CheckError(
                "permission", f"store {self.url}: {exc.strerror}: {exc.filename}"
            ) from None

    def chunks(self, key: str) -> Iterator[bytes]:
        try:
            with open(self.root / key, "rb") as f:
                while block := f.read(CHUNK):
                    yield block
        except OSError as exc:
            raise CheckError(
                "query", f"store {self.url}: cannot read {key}: {exc.strerror}"
            ) from None

    def head(self, key: str) -> StoredObject | None:
        try:
            st = (self.root / key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, st.st_size, st.st_mtime, None, _version(st))


def _version(st: os.stat_result) -> str:
    return f"{st.st_ino}:{st.st_ctime_ns}:{st.st_mtime_ns}"


class S3Store:
    def __init__(self, url: str, bucket: str, prefix: str, aws: AwsConfig) -> None:
        self.url = url
        self.bucket = bucket
        self.prefix = prefix
        self.aws = aws
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws_client("s3", self.aws, self.aws.region, f"store {self.url}")
        return self._client

    def list(self) -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    yield StoredObject(
                        obj["Key"][len(self.prefix) :],
                        int(obj["Size"]),
                        obj["LastModified"].timestamp(),
                        obj.get("ETag", "").strip('"') or None,
                    )
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(f"store {self.url}", exc, "list") from None

    def chunks(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            with body:
                while block := body.read(CHUNK):
                    yield block
        except (BotoCoreError, ClientError) as exc:
            raise aws_error(f"store {self.url}", exc, f"read {key}") from None

    def head(self, key: str) -> StoredObject | None:
        try:
            obj = self.client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise aws_error(f"store {self.url}", exc, f"head {key}") from None
        except BotoCoreError as exc:
            raise aws_error(f"store {self.url}", exc, f"head {key}") from None
        return StoredObject(
            key,
            int(obj["ContentLength"]),
            obj["LastModified"].timestamp(),
            obj.get("ETag", "").strip('"') or None,
        )


def is_backup(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def same_object(original: StoredObject, copy: StoredObject | None) -> bool:
    """Whether `copy` is `original` as a cross-region replication writes it."""
    if copy is None or copy.size != original.size:
        return False
    # Multipart ETags ("...-N") depend on part sizes, which a copy may choose differently.
    if original.etag and copy.etag and "-" not in original.etag + copy.etag:
        return original.etag == copy.etag
    return True


def listed_backups(
    store: Store, patterns: list[str], exclude: tuple[str, ...] = ()
) -> list[StoredObject]:
    """The store's keys matching `patterns` and under none of `exclude`, oldest first."""
    return sorted(
        (
            o
            for o in store.list()
            if is_backup(o.key, patterns) and not any(o.key.startswith(p) for p in exclude)
        ),
        key=lambda o: (o.modified, o.key),
    )


def nested_prefixes(outer: str, *inner: str | None) -> tuple[str, ...]:
    """The key prefixes of `outer` where any of the `inner` stores lie."""
    return tuple(p for store in inner if (p := nested_prefix(outer, store)) is not None)


def nested_prefix(outer: str, inner: str | None) -> str | None:
    """Where store `inner` lies inside store `outer`, as a key prefix of `outer`; None when it
    does not (another bucket, another directory, or no store)."""
    if not inner:
        return None
    a, b = urlparse(outer), urlparse(inner)
    if a.scheme != b.scheme or a.netloc != b.netloc:
        return None
    outer_path = a.path.strip("/") + "/" if a.path.strip("/") else ""
    inner_path = b.path.strip("/") + "/"
    if inner_path == outer_path or not inner_path.startswith(outer_path):
        return None
    return inner_path[len(outer_path) :]


def open_store(url: str, aws: AwsConfig) -> Store:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return FileStore(url, Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3Store(url, parsed.netloc, prefix, aws)
    raise CheckError("config", f"store {url}: use s3://bucket/prefix/ or file:///path/")
