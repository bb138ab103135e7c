"""What the daemon runs right now: config, jobs and sections, swapped whole on reload."""

from __future__ import annotations

from dataclasses import dataclass

from core.config.loading import LoadedConfig, OffSection
from core.config.schema import Config
from core.sharding import UNSHARDED, Shard
from exporter.runtime.runner import Job


@dataclass(frozen=True)
class ReloadState:
    successful: bool
    last_success: float


@dataclass(frozen=True)
class Current:
    """What the collector reads: swapped whole on reload."""

    config: Config
    jobs: tuple[Job, ...]
    sections: tuple[tuple[str, str, bool], ...]  # (target, section, enabled)
    off: tuple[OffSection, ...] = ()  # the sections that are off, and why
    shard: Shard = UNSHARDED  # which of the fleet's replicas this is


def sections(loaded: LoadedConfig) -> tuple[tuple[str, str, bool], ...]:
    out = [
        (t.name, section, True)
        for t in loaded.config.targets
        for section, body in (
            ("postgres", t.postgres),
            ("backups", t.backups),
            ("rds", t.rds),
            ("redis", t.redis),
        )
        if body is not None
    ]
    out += [(off.target, off.section, False) for off in loaded.off]
    return tuple(out)
