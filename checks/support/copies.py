"""Whether a replica's object is the backup it copies: by content where the stores give no
checksum to compare.

S3 gives a single-part object's MD5 as its ETag, so two plain ETags are compared as they are. A
file:// store gives none (and a multipart ETag depends on part sizes): there a same-size file
proves nothing, so both are read through SHA-256 once, and the digest is kept beside the
verdicts, tied to what identifies that version of the object (its ETag, or its size, mtime,
inode and ctime: a file rewritten in place is hashed again).
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from checks.support.stores import Store, StoredObject, same_object
from core.statefile import read_state, write_state


class _Digest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str = Field(max_length=512)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


_DIGESTS = TypeAdapter(dict[str, _Digest])


def _identity(obj: StoredObject) -> str:
    return f"{obj.etag or ''}:{obj.size}:{obj.version or ''}"


class DigestCache:
    """SHA-256 of stored objects by store and key, kept across restarts (mode 0600)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        found = read_state(path, _DIGESTS) if path is not None else None
        self._entries: dict[str, _Digest] = found or {}

    def sha256(self, store: Store, obj: StoredObject) -> str:
        name = f"{store.url}{obj.key}"
        with self._lock:
            known = self._entries.get(name)
        if known is not None and known.identity == _identity(obj):
            return known.sha256
        digest = hashlib.sha256()
        for block in store.chunks(obj.key):
            digest.update(block)
        found = digest.hexdigest()
        with self._lock:
            self._entries[name] = _Digest(identity=_identity(obj), sha256=found)
        self._save()
        return found

    def retain(self, names: set[str]) -> None:
        """Forgets objects no longer listed (store URL + key)."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k in names}
        self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        with self._lock:
            snapshot = json.dumps({k: v.model_dump() for k, v in self._entries.items()})
        write_state(self.path, snapshot)  # the digests still work from memory when it cannot


def plain_etags(original: StoredObject, copy: StoredObject) -> bool:
    """Whether both carry content checksums the store computed (non-multipart ETags)."""
    return bool(original.etag and copy.etag and "-" not in original.etag + copy.etag)


def is_copy(
    primary: Store,
    original: StoredObject,
    replica: Store,
    copy: StoredObject | None,
    digests: DigestCache,
) -> bool:
    """Whether `copy` holds what `original` holds: size and ETags where the store computed them,
    else the content's SHA-256."""
    if copy is None or not same_object(original, copy):
        return False
    if plain_etags(original, copy):
        return True
    return digests.sha256(primary, original) == digests.sha256(replica, copy)
