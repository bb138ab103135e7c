"""What a check is and what one run of it produces."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from core.errors import CheckError
from core.metrics import MetricSpec, Sample


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


Value = float | int | str | bool | None


class Facts:
    """Typed findings of a check that other parts of drwatch act on (remediation reads the
    connections check's), so `values`, which are output, never double as an interface."""


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
    facts: Facts | None = None
    # When the data judged was read at its source, if earlier than this run (a cached store
    # listing or catalogue): exported as drwatch_check_data_timestamp_seconds.
    data_timestamp: float | None = None

    def add(self, spec: MetricSpec, value: float | bool | None, /, **labels: str) -> None:
        """Adds a sample; None means "not measured" and adds nothing (absent, never stale).

        Labels must be exactly the declared ones (LabelMismatch otherwise).
        """
        if value is None:
            return
        self.samples.append(spec.sample(value, **labels))


S = TypeVar("S")


class Check(Generic[S]):
    """One check of one target. `run()` measures once. Everything a check remembers between
    runs lives in `state`, which a config reload hands to the check that replaces it."""

    def __init__(self, state: S) -> None:
        self.state = state

    def run(self) -> Observation:
        raise NotImplementedError

    def waits_on(self) -> str | None:
        """What a run waits on beyond a database (a store's URL): named when it times out."""
        return None

    def adopt(self, previous: Check[Any]) -> None:
        """Takes over the state of the check this one replaces on a reload."""
        if type(previous) is type(self):
            self.state = previous.state
