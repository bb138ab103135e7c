"""Sharding a fleet across replicas, as kube-state-metrics does: every replica loads the whole
config (so all validate it alike) and runs only the targets whose name hashes to its shard. The
assignment depends on the target's name and the shard count alone: stable across restarts,
reloads and the order of targets."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from core.config.loading import LoadedConfig


@dataclass(frozen=True)
class Shard:
    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"--total-shards {self.total}: must be 1 or more")
        if not 0 <= self.index < self.total:
            raise ValueError(
                f"--shard {self.index}: must be from 0 to {self.total - 1} "
                f"(--total-shards {self.total})"
            )

    def owns(self, target: str) -> bool:
        return _hash(target) % self.total == self.index

    def worker_of(self, target: str, workers: int) -> int:
        """Which of this replica's `workers` processes runs `target`: the same hash, past the
        part that chose the shard (every target of a shard has the same remainder by `total`,
        so the remainder alone would put them all in one worker)."""
        return _hash(target) // self.total % workers

    def select(self, loaded: LoadedConfig) -> LoadedConfig:
        """The config with this shard's targets only."""
        if self.total == 1:
            return loaded
        targets = [t for t in loaded.config.targets if self.owns(t.name)]
        return dataclasses.replace(
            loaded,
            config=loaded.config.model_copy(update={"targets": targets}),
            off=[off for off in loaded.off if self.owns(off.target)],
        )


def _hash(target: str) -> int:
    # sha256, not hash(): the same on every replica and in every process.
    return int.from_bytes(hashlib.sha256(target.encode()).digest()[:8], "big")


UNSHARDED = Shard()  # one replica runs every target
