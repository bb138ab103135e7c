"""Which point of an RDS instance's (or Aurora cluster's) restorable window an `rds_pitr` drill
restores: newest is its LatestRestorableTime, not now; oldest the window's start (the retention
back from the newest, not before the instance was created); random between; rotate takes newest,
random and oldest in turn, by the target's earlier rds_pitr drills."""

from __future__ import annotations

import random
from datetime import datetime

from core.config.aws_drills import RdsPitrDrill
from core.config.schema import Config, Target
from exporter.drills.history import drill_history
from exporter.drills.result import Timer

ROTATION = ("newest", "random", "oldest")
SCENARIO = "rds_pitr"


def point_in_window(
    config: Config,
    target: Target,
    drill: RdsPitrDrill,
    latest: datetime,
    created: datetime,
    timer: Timer,
) -> tuple[datetime, datetime | None]:
    """(the newest restorable time, the time asked: None for the newest) within the retention
    window, by the drill's point (rotate: newest, random, oldest in turn)."""
    assert target.rds is not None
    earliest = max(created.timestamp(), latest.timestamp() - target.rds.retention) + 60
    point = _point(config, target, drill)
    timer.result.point = point
    if point == "newest" or earliest >= latest.timestamp():
        return latest, None
    newest = latest.timestamp()
    when = earliest if point == "oldest" else random.SystemRandom().uniform(earliest, newest)
    return latest, datetime.fromtimestamp(when, latest.tzinfo)


def _point(config: Config, target: Target, drill: RdsPitrDrill) -> str:
    if drill.point != "rotate":
        return drill.point
    history = drill_history(config.state_dir, config.drills).read()
    earlier = [r for r in history if (r.target, r.scenario) == (target.name, SCENARIO)
               and r.outcome != "deferred"]  # fmt: skip
    return ROTATION[len(earlier) % len(ROTATION)]
