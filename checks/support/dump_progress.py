"""Dumps being written now: under a temporary name, or growing between two runs.

On a file:// store, a dump written in place (`pg_dump -f app.dump`) looks like a finished one,
only smaller: read
then, it fails verification as truncated. So a dump whose size or time moved since the last run
is running, not a backup yet (neither the newest, nor verified); one under a temporary name
(`app.dump.tmp`, `.part`, `.partial`, `.inprogress`, rsync's `.app.dump.Xy12Ab`) is running for
as long as it stays there. Seen once, a dump is taken as it is: two observations are needed to
see movement, and a first look that reads a half-written dump is read again once it changes.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from checks.support.stores import StoredObject

TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".inprogress", ".incomplete", ".filepart")
_RSYNC_TEMP = re.compile(r"^\.(.+)\.[A-Za-z0-9]{6}$")
TRACKED = 5  # the newest dumps watched for growth: older ones are long finished


@dataclass
class Progress:
    """What the backups check remembers between runs."""

    seen: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (size, modified)
    since: dict[str, float] = field(default_factory=dict)  # key -> first seen running


@dataclass(frozen=True)
class Running:
    key: str
    since: float
    size: int
    temporary: bool


def temporary_name(key: str, patterns: list[str]) -> bool:
    """Whether `key` is a dump under a temporary name (its final name matches `patterns`)."""
    directory, name = posixpath.split(key)
    finals = [name[: -len(s)] for s in TEMPORARY_SUFFIXES if name.endswith(s)]
    if m := _RSYNC_TEMP.match(name):
        finals.append(m[1])
    return any(
        fnmatch.fnmatchcase(posixpath.join(directory, final), p)
        for final in finals
        for p in patterns
    )


def in_progress(
    objects: Iterable[StoredObject],
    backups: list[StoredObject],
    patterns: list[str],
    progress: Progress,
    now: float,
    in_place: bool,
) -> list[Running]:
    """The dumps being written (oldest first); `progress` updated for the next run.
    `in_place`: files grow where they are written (file://); an S3 object appears whole."""
    temporary = {o.key: o for o in objects if temporary_name(o.key, patterns)}
    tracked = {**{o.key: o for o in (backups[-TRACKED:] if in_place else [])}, **temporary}
    moving = [
        o for o in tracked.values()
        if o.key in temporary
        or (o.key in progress.seen and progress.seen[o.key] != (o.size, o.modified))
    ]  # fmt: skip
    progress.seen = {k: (o.size, o.modified) for k, o in tracked.items()}
    progress.since = {o.key: progress.since.get(o.key, now) for o in moving}
    return sorted(
        (Running(o.key, progress.since[o.key], o.size, o.key in temporary) for o in moving),
        key=lambda r: r.since,
    )
