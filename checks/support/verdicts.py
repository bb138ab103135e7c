"""Integrity verdicts, cached by key + ETag/size so each backup is read once, across restarts."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict, TypeAdapter

from checks.support.stores import StoredObject
from checks.support.verify import Verdict
from core.statefile import read_state

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
        self._warned = False
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
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Unique: replicas sharing a verdict_dir may save one target's file at once.
            tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
            tmp.write_text(snapshot)
            os.replace(tmp, self.path)
        except OSError as exc:
            if not self._warned:  # once: the verdicts still work, from memory
                log.warning("cannot save verdict cache %s: %s", self.path, exc.strerror)
                self._warned = True
