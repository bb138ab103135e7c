"""Which point of the recovery window a pitr drill recovers to (`drills.pitr.point`).

A drill to the newest point proves the newest end only. `oldest` restores the backup the
recovery window starts at (as the base_backups check reads it) and stops as soon as it is
consistent (`recovery_target = 'immediate'`). `random` picks a time between the oldest backup
and the newest archived WAL, restores the newest backup taken before it and replays to a random
WAL position after that backup: a point the archive cannot reach ends recovery with PostgreSQL's
own error, and fails the drill. `rotate` takes newest, random and oldest in turn, by the count
of the target's earlier pitr drills, so three drills prove the whole window.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from checks.backup_tools import pg_basebackup
from checks.backup_tools.registry import (
    archive_files,
    detect_catalogue,
    read_catalogue,
    wal_layout,
)
from checks.base_backups import window_start
from checks.support.continuity import history_reader, read_continuity
from checks.support.stores import Store
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from exporter.drills.history import drill_history

ROTATION = ("newest", "random", "oldest")
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024  # unless backups.wal_segment_size says otherwise


@dataclass(frozen=True)
class Point:
    asked: str  # newest, oldest or random
    index: int  # which backup, in the list oldest first
    settings: dict[str, str] = field(default_factory=dict)  # recovery settings
    target_time: float | None = None  # random: the time that chose the backup


def point_kind(config: Config, target: Target) -> str:
    """The configured point, with `rotate` turned into this drill's turn."""
    assert target.drills is not None and target.drills.pitr is not None
    kind = target.drills.pitr.point
    if kind != "rotate":
        return kind
    earlier = [
        r for r in drill_history(config.state_dir, config.drills).read()
        if r.target == target.name and r.scenario == "pitr" and r.outcome != "deferred"
    ]  # fmt: skip
    return ROTATION[len(earlier) % len(ROTATION)]


def choose(
    kind: str, taken: list[float], archive_end: float | None, pick: random.Random | None = None
) -> Point:
    """`taken`: when each base backup was taken (finished), oldest first; `archive_end`: when
    the newest WAL file was archived."""
    newest = len(taken) - 1
    if kind == "oldest":
        return Point("oldest", 0, {"recovery_target": "'immediate'"})
    if kind == "random" and archive_end is not None and archive_end > taken[0]:
        when = (pick or random.SystemRandom()).uniform(taken[0], archive_end)
        index = max(i for i, t in enumerate(taken) if t <= when)
        return Point("random", index, {}, when)
    return Point("newest", newest)


def random_lsn(
    backup_end: int, archive_end: int, pick: random.Random | None = None
) -> dict[str, str]:
    """The recovery target of a random point after the chosen backup: a WAL position between
    its end (where the copy is consistent) and the start of the newest archived segment, so a
    record follows it whenever the archive is whole. A time would not do: PostgreSQL stops at
    a time only on a commit after it, and an idle database has none (it would refuse a point
    that is in fact recoverable). Where nothing lies between: the backup's end."""
    if archive_end <= backup_end:
        return {"recovery_target": "'immediate'"}
    lsn = (pick or random.SystemRandom()).randrange(backup_end, archive_end)
    return {"recovery_target_lsn": f"'{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}'"}


def window_start_label(base: Store, wal: Store, backups: BackupsConfig) -> str | None:
    """The backup the recovery window starts at as the base_backups check reads it (the oldest
    complete one whose WAL is continuous to the archive's newest): the `oldest` point is that
    one, so a drill proves the start drwatch reports, or says it does not recover."""
    segment_size = backups.wal_segment_size or DEFAULT_SEGMENT_SIZE
    in_base = list(base.list())
    layout = detect_catalogue(in_base) or pg_basebackup.TOOL.layout
    catalogue = read_catalogue(base, in_base, layout, segment_size)
    listed = list(wal.list())
    archive = archive_files(listed, wal_layout(listed, backups.wal_layout))
    continuity = read_continuity(archive, segment_size, history_reader(wal))
    start = window_start(catalogue, continuity)
    return start.label if start else None
