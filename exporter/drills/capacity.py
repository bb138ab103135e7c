"""What drills of every target share in one process: slots (`drills.max_concurrent`) and
scratch disk (`drills.disk_budget`). A drill that cannot have them in time is deferred, which
is not a failed drill: the host lacked room, the backup was not judged."""

from __future__ import annotations

import threading
import time

from core.humanize import format_bytes


class DrillDeferred(Exception):
    """The drill could not start for want of capacity: why, in words."""


class Capacity:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.max_concurrent = 1
        self.disk_budget: int | None = None
        self._holders: set[int] = set()  # threads holding a slot
        self._claims: dict[int, int] = {}  # thread -> bytes of scratch disk it claimed

    def configure(self, max_concurrent: int, disk_budget: int | None) -> None:
        with self._cond:
            self.max_concurrent, self.disk_budget = max_concurrent, disk_budget
            self._cond.notify_all()

    def acquire(self, wait: float | None) -> None:
        """A slot, waiting up to `wait` seconds (None: as long as it takes)."""
        deadline = None if wait is None else time.monotonic() + wait
        with self._cond:
            while len(self._holders) >= self.max_concurrent:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise DrillDeferred(
                        f"{len(self._holders)} drill(s) already running (drills.max_concurrent: "
                        f"{self.max_concurrent}); waited {wait:g} s"
                    )
                self._cond.wait(left)
            self._holders.add(threading.get_ident())

    def release(self) -> None:
        with self._cond:
            self._holders.discard(threading.get_ident())
            self._claims.pop(threading.get_ident(), None)
            self._cond.notify_all()

    def claim_disk(self, need: int) -> None:
        """Scratch disk for the calling drill, within the budget the running drills share."""
        with self._cond:
            me = threading.get_ident()
            others = sum(v for k, v in self._claims.items() if k != me)
            if self.disk_budget is not None and others + need > self.disk_budget:
                raise DrillDeferred(
                    f"needs {format_bytes(need)} of scratch disk; running drills hold "
                    f"{format_bytes(others)} of drills.disk_budget {format_bytes(self.disk_budget)}"
                )
            if me in self._holders:  # a drill run outside the engine claims nothing
                self._claims[me] = need


CAPACITY = Capacity()
