"""State files in state_dir, read as the untrusted input they are.

A file drwatch wrote may come back changed: by an upgrade (a field more or less), a disk, a hand
or an attacker. Each is read through a typed schema, bounded in size; what does not fit is set
aside (renamed `<name>.bad-<time>`, logged once) and the state is rebuilt from nothing — a full
sweep, a re-verification — never a crash at start and never a check stuck UNKNOWN.
"""

from __future__ import annotations

import json
import logging
import os
import time
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
