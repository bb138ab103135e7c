"""State files in state_dir, read as the untrusted input they are.

A file drwatch wrote may come back changed: by an upgrade (a field more or less), a disk, a hand
or an attacker. Each is read through a typed schema, bounded in size; what does not fit is set
aside (renamed `<name>.bad-<time>`, logged once) and the state is rebuilt from nothing — a full
sweep, a re-verification — never a crash at start and never a check stuck UNKNOWN.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

log = logging.getLogger("drwatch.state")

MAX_STATE_BYTES = 64 << 20
T = TypeVar("T")


def set_aside(path: Path, why: str) -> Path | None:
    """Moves a state file that does not fit out of the way, keeping it for a look."""
    aside = path.with_name(f"{path.name}.bad-{int(time.time())}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        log.warning("state file %s does not fit (%s) and cannot be set aside: %s", path, why,
                    exc.strerror)  # fmt: skip
        return None
    log.warning("state file %s does not fit (%s): set aside as %s, rebuilt", path, why, aside.name)
    return aside


def read_state(path: Path, schema: TypeAdapter[T]) -> T | None:
    """The file's content as `schema` says, or None: missing, or set aside because it does not
    fit (unreadable, too big, not JSON, the wrong shape)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("state file %s unreadable: %s", path, exc.strerror)
        return None
    if len(data) > MAX_STATE_BYTES:
        set_aside(path, f"larger than {MAX_STATE_BYTES >> 20} MB")
        return None
    try:
        return schema.validate_python(json.loads(data))
    except (ValueError, ValidationError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(p) for p in first["loc"]) if first else ""
        why = f"{where}: {first['msg']}" if first else f"not JSON ({type(exc).__name__})"
        set_aside(path, why)
        return None


class StateWrites:
    """Whether drwatch's last write to state_dir worked: a read-only or full state_dir costs
    memory across restarts, never the daemon (drwatch_state_writable), and is said once per
    change, not at every write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.writable = True
        self.failure = ""

    def note(self, path: Path, error: OSError | None) -> None:
        with self._lock:
            was = self.writable
            self.writable = error is None
            if error is not None:
                self.failure = f"{path}: {error.strerror or error}"
        if was and error is not None:
            log.warning("state_dir not writable, keeping state in memory: %s", self.failure)
        elif not was and error is None:
            log.info("state_dir writable again: %s", path)


STATE_WRITES = StateWrites()


def write_state(path: Path, text: str) -> bool:
    """`text` as the whole of `path`, atomically (a temporary file renamed over it), mode 0600,
    never through a link; the temporary file never left behind. False when it cannot be written
    (said through STATE_WRITES)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        STATE_WRITES.note(path, exc)
        return False
    STATE_WRITES.note(path, None)
    return True
