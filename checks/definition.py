"""How a check declares itself, once, in its module: its name, config section, metrics, the
scenarios it measures and how it is built from the config. `checks.registry` lists them all;
everything that lists checks (the job builder, docs, the status page, `config validate`) reads
that list."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from checks.base import Check
from checks.support.stores import Store, open_store
from checks.support.verdicts import VerdictCache
from core.config.aws import AwsConfig
from core.config.base import CheckOptions
from core.config.schema import Config, ObjectiveSpec, Scenario, Target
from core.metrics import MetricSpec

Section = Literal["postgres", "backups", "rds", "redis"]


@dataclass
class BuildContext:
    """One target's config while its checks are built; stores and verdict caches are shared
    by the checks that read the same ones (replica_copy reads the backups check's verdicts)."""

    config: Config
    target: Target
    _stores: dict[str, Store] = field(default_factory=dict)
    _caches: dict[str, VerdictCache] = field(default_factory=dict)

    def objective(self, scenario: Scenario) -> ObjectiveSpec:
        return self.config.objective(self.target, scenario)

    def objective_configured(self, scenario: Scenario) -> bool:
        return self.config.objective_configured(self.target, scenario)

    def store(self, url: str, aws: AwsConfig | None = None) -> Store:
        """The store at `url`, reached as `aws` says (a replica's own), else as `aws:` does."""
        if url not in self._stores:
            self._stores[url] = open_store(url, aws or self.config.aws)
        return self._stores[url]

    def state_file(self, kind: str) -> Path:
        """Where the target's `kind` state survives restarts: state_dir/<kind>-<target>.json
        (a replica's own, unlike verdicts)."""
        return Path(self.config.state_dir) / f"{kind}-{self.target.name}.json"

    def verdicts(self, kind: str) -> VerdictCache:
        """The target's cache of `kind` verdicts, in verdict_dir or state_dir
        (`<kind>-<target>.json`)."""
        if kind not in self._caches:
            directory = Path(self.config.verdict_dir or self.config.state_dir)
            path = directory / f"{kind}-{self.target.name}.json"
            self._caches[kind] = VerdictCache(path)
        return self._caches[kind]


@dataclass(frozen=True)
class Planned:
    """A check built for one target, with its schedule."""

    check: Check[Any]
    interval: float
    timeout: float  # drwatch's own deadline for one run
    metrics: tuple[MetricSpec, ...] = ()  # beyond the definition's: declared by the config
    # The scenarios it measures for this target, where fewer than the definition's.
    scenarios: tuple[Scenario, ...] | None = None


@dataclass(frozen=True)
class CheckDef:
    name: str  # the `check` label, the row of `drwatch check` and the status page
    section: Section  # the target's config section it reads
    source: str  # where it looks (the README's "source of truth")
    tells: str  # what it tells you (the README's table)
    metrics: tuple[MetricSpec, ...]
    scenarios: tuple[Scenario, ...]  # recovery scenarios whose exposure it measures
    # The check for a target, or None where the target's config does not ask for it.
    plan: Callable[[BuildContext], Planned | None]
    # A check of the same target whose results this one reads: it runs right after that one.
    after: str | None = None


def scheduled(check: Check[Any], options: CheckOptions, interval: float, timeout: float) -> Planned:
    """`check` on its own interval and deadline where its options set them, else the section's."""
    return Planned(check, options.interval or interval, options.timeout or timeout)
