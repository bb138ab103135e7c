"""`drwatch drill --scenario failover`: fails an RDS instance over, once a person typed its name
back (or gave it with --yes-fail-over); never scheduled."""

from __future__ import annotations

import sys

from core.config.drills import DrillCapacity
from core.durations import format_duration
from core.redact import redact
from exporter.cli.load import load_or_report
from exporter.drills.failover import failover_history
from exporter.drills.rds_failover import fail_over
from exporter.drills.scratch import DrillError

ABORTED = 3


def failover(path: str, target_name: str | None, confirmed: str | None) -> int:
    from exporter.logs import setup_logging

    setup_logging("warning")
    loaded = load_or_report(path)
    if loaded is None:
        return ABORTED
    redact.set_secrets(loaded.secrets)
    config = loaded.config
    with_rds = [t for t in config.targets if t.rds and target_name in (None, t.name)]
    if target_name is None or not with_rds:
        print(
            "the failover drill fails one RDS instance over: name its target with --target "
            "(one whose rds: section is set)",
            file=sys.stderr,
        )
        return ABORTED
    target = with_rds[0]
    assert target.rds is not None
    instance = target.rds.instance
    if confirmed is None:
        print(
            f"This fails over RDS instance {instance} (target {target.name}) now: its "
            "connections drop. Type the instance's name to go on: ",
            end="", file=sys.stderr, flush=True,
        )  # fmt: skip
        confirmed = sys.stdin.readline().strip()
    if confirmed != instance:
        print(f"not failed over: {confirmed!r} is not {instance!r}", file=sys.stderr)
        return ABORTED
    try:
        record = fail_over(config, target)
    except DrillError as exc:
        print(f"{target.name}: failover drill failed: {exc}", file=sys.stderr)
        return 2
    failover_history(config.state_dir, config.drills or DrillCapacity()).append([record])
    objective = config.objective(target, "primary_failover").rto
    print(
        f"{target.name}: {instance} failed over in {format_duration(record.duration_seconds)} "
        f"({record.detail}); objective {format_duration(objective) if objective else 'not set'}"
    )
    return 0 if objective is None or record.duration_seconds <= objective else 1
