"""What every check produces, and how its metrics are declared (once, here or in its module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal

from core.errors import CheckError


class Status(IntEnum):
    """Nagios semantics: the value is the exit code of `drwatch check`."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def worst(statuses: list[Status]) -> Status:
    """UNKNOWN outranks OK and WARNING but not CRITICAL: a known fire beats an unknown one."""
    order = {Status.OK: 0, Status.WARNING: 1, Status.UNKNOWN: 2, Status.CRITICAL: 3}
    return max(statuses, key=order.__getitem__, default=Status.OK)


@dataclass(frozen=True)
class MetricSpec:
    """The one declaration of a metric: the collector, docs and tests read it from here.

    `labels` are those beyond `target`, which every check metric carries.
    """

    name: str
    type: Literal["gauge", "counter"]
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    labels: tuple[tuple[str, str], ...] = ()


Value = float | int | str | bool | None


@dataclass
class Observation:
    """What one run of a check saw.

    `values` are the key figures for `drwatch check --format json` and the status page;
    `exposures` maps a recovery scenario to seconds of data at risk (None: configured but not
    measurable right now).
    """

    status: Status
    summary: str
    values: dict[str, Value] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    exposures: dict[str, float | None] = field(default_factory=dict)
    # Parts that could not be measured while the rest was: the check counts as down.
    errors: list[CheckError] = field(default_factory=list)

    def add(self, name: str, value: float | int | bool | None, **labels: str) -> None:
        """Adds a sample; None means "not measured" and adds nothing (absent, never stale)."""
        if value is None:
            return
        self.samples.append(Sample(name, float(value), tuple(sorted(labels.items()))))
