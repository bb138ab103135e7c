"""One AWS drill's life, whatever it restores: a slot and the month's budget claimed (else
deferred), the temporary resource requested, waited for under the drill's deadline, checked, and
deleted in every outcome (a failed delete is said; the reaper finds what is left), its lifetime
added to the month's instance-hours. Phases: request, provision (until AWS says available),
available (until it answers), verify; delete after the clock stops."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from checks.support.aws import aws_error
from core.config.schema import Config, Target
from exporter.drills.aws_budget import claim, release
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DRILL_FAILURES, DrillError

log = logging.getLogger("drwatch.drills")
AWS_FAILURES = (*DRILL_FAILURES, BotoCoreError, ClientError)
_LIVE: set[Resource] = set()  # what AWS drills made and have not deleted yet
_LIVE_LOCK = threading.Lock()


@dataclass(eq=False)
class Resource:
    """What an AWS drill made: its name (set once requested), and how to delete it."""

    where: str
    delete: Callable[[str], None]
    name: str | None = None
    requested_at: float | None = None  # monotonic: its lifetime, for the budget
    deleted: bool = False

    def made(self, name: str) -> None:
        """It exists now: deleted at the drill's end, or when drwatch stops first."""
        self.name, self.requested_at = name, time.monotonic()
        with _LIVE_LOCK:
            _LIVE.add(self)


def delete_all() -> list[str]:
    """drwatch is stopping (SIGTERM) mid-drill: what AWS drills made is deleted now, not left
    for the next start's reaper; the names deleted."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    out = []
    for resource in live:
        try:
            _remove(resource)
            out.append(str(resource.name))
        except (BotoCoreError, ClientError) as exc:
            log.warning("drill resource not deleted at stop: %s",
                        aws_error(resource.where, exc, f"delete {resource.name}"))  # fmt: skip
    return out


def _remove(resource: Resource) -> None:
    with _LIVE_LOCK:
        if resource.deleted or resource.name is None:
            return
        resource.deleted = True
        _LIVE.discard(resource)
    resource.delete(resource.name)


def run(
    config: Config,
    target: Target,
    scenario: str,
    deadline: float,
    resource: Resource,
    body: Callable[[Timer], str],
) -> DrillResult:
    """`body` requests, waits for and checks the resource (setting `resource.name` as soon as
    it exists), returning the summary; what it raises fails the drill, said by name."""
    timer = Timer(DrillResult(target.name, scenario, time.time()), deadline)
    key = f"{target.name}/{scenario}"
    claim(config.state_dir, key, config.drills.aws)  # DrillDeferred: the engine defers it
    try:
        summary = body(timer)
        problems = timer.result.values.pop("problems", [])
        result = timer.finish(not problems, "; ".join([summary, *problems]))
    except AWS_FAILURES as exc:
        if isinstance(exc, BotoCoreError | ClientError):
            exc = aws_error(resource.where, exc, "restore")
        result = timer.fail(exc, target.drills.timeout if target.drills else 0.0)
    finally:
        lifetime = 0.0
        if resource.name is not None:
            with timer.phase("delete"):
                _delete(resource, timer)
            lifetime = time.monotonic() - (resource.requested_at or time.monotonic())
        release(config.state_dir, key, lifetime)
    return result


def _delete(resource: Resource, timer: Timer) -> None:
    assert resource.name is not None
    try:
        _remove(resource)
        timer.result.values["deleted"] = resource.name
    except (BotoCoreError, ClientError) as exc:  # said; the reaper deletes it within the hour
        why = aws_error(resource.where, exc, f"delete {resource.name}")
        timer.result.values["delete_failed"] = str(why)
        log.warning("drill resource not deleted: %s", why)


def wait_for(describe: Callable[[], tuple[str, Any]], timer: Timer, poll: float, what: str) -> Any:
    """Polls `describe` (status, detail) until the status is `available`; DrillError naming
    the last status when the drill's deadline passes first."""
    status = "unknown"
    while True:
        status, detail = describe()
        if status == "available":
            return detail
        if status in ("failed", "incompatible-restore", "incompatible-parameters",
                      "incompatible-network", "restore-error", "create-failed"):  # fmt: skip
            raise DrillError(f"{what}: AWS says {status}")
        if timer.deadline - time.monotonic() <= poll:
            raise DrillError(f"{what} did not become available within the drill's deadline "
                             f"(last status: {status})")  # fmt: skip
        time.sleep(poll)  # AWS provisions on its own time; bounded by the deadline above
