"""Integrity verdicts, cached by key + ETag/size so each backup is read once, across restarts."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from checks.support.stores import StoredObject
from checks.support.verify import Verdict
from core.statefile import read_state, write_state

log = logging.getLogger("drwatch.verdicts")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str
    ok: bool
    reason: str
    toc_entries: int | None
    bytes_read: int
    duration_seconds: float

    def verdict(self) -> Verdict:
        return Verdict(self.ok, self.reason, self.toc_entries, self.bytes_read,
                       self.duration_seconds)  # fmt: skip


_VERDICTS = TypeAdapter(dict[str, _Entry])


def _identity(obj: StoredObject) -> str:
    # An object rewritten under the same key is a different backup: verify it again (a file
    # rewritten in place at the same size has another version).
    return f"{obj.etag or ''}:{obj.size}" + (f":{obj.version}" if obj.version else "")


class VerdictCache:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, object]] = {}
        if path is not None:
            # A verdict that does not fit is re-verified, never trusted, never a stuck check.
            self._entries = {
                key: {"identity": entry.identity, **asdict(entry.verdict())}
                for key, entry in (read_state(path, _VERDICTS) or {}).items()
            }

    def get(self, obj: StoredObject) -> Verdict | None:
        with self._lock:
            entry = self._entries.get(obj.key)
        if not entry or entry.get("identity") != _identity(obj):
            return None
        fields = {k: v for k, v in entry.items() if k != "identity"}
        return Verdict(**fields)  # type: ignore[arg-type]

    def put(self, obj: StoredObject, verdict: Verdict) -> None:
        with self._lock:
            self._entries[obj.key] = {"identity": _identity(obj), **asdict(verdict)}

    def retain(self, keys: set[str]) -> None:
        """Forgets backups no longer in the store (retention removed them), then saves."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k in keys}
            snapshot = json.dumps(self._entries, sort_keys=True)
        if self.path is not None:  # the verdicts still work from memory when it cannot
            write_state(self.path, snapshot)
