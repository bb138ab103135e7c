"""`drwatch config validate`: every problem in a config, the checks it would run, what is off.

Every section is validated, on or off: a CI job without production secrets (every connection
string unset, every section off) still catches a misspelt key or a duration without its unit.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from core.config.drills import RUNBOOK_TESTS, DrillCapacity, cron_trigger
from core.config.schema import Target
from core.config.stores import BackupsConfig
from core.durations import format_duration
from core.redact import redact
from exporter.cli.load import load_or_report
from exporter.drills.history import drill_history
from exporter.drills.isolation import IsolationUnavailable, client_only, isolation
from exporter.runtime.jobs import build_jobs


def _layouts(backups: BackupsConfig | None) -> list[str]:
    """How the stores will be read: the layout configured, or detected at each run."""
    if backups is None:
        return []
    out = []
    for what, url, layout in (
        ("WAL store", backups.wal_store, backups.wal_layout),
        ("base backups", backups.base_store, backups.base_layout),
    ):
        if url:
            how = "layout detected from the names at each run" if layout == "auto" else layout
            out.append(f"{what} {url}: {how}")
    return out


AWS_DRILLS = ("rds_pitr", "rds_snapshot", "elasticache")


def _aws_sources(target: Target, state_dir: str) -> dict[str, str]:
    """What each AWS drill creates, and what a run costs by the last drills' lifetimes."""
    drills, rds, cache = target.drills, target.rds, target.redis
    assert drills is not None
    out = {}
    restores = (("rds_pitr", drills.rds_pitr, "a point in time"),
                ("rds_snapshot", drills.rds_snapshot, "its newest snapshot"))  # fmt: skip
    for scenario, drill, kind in restores:
        if rds is not None and drill is not None:
            size = drill.instance_class or "production's class"
            out[scenario] = (
                f"a temporary RDS instance ({size}) restored from {rds.instance} at {kind}, "
                f"deleted after; {_cost(target.name, scenario, state_dir)}"
            )
    group = cache.elasticache.replication_group if cache and cache.elasticache else None
    if group and drills.elasticache is not None:
        size = drills.elasticache.node_type or "production's node type"
        out["elasticache"] = (
            f"a temporary replication group ({size}) from the newest snapshot of {group}, "
            f"deleted after; {_cost(target.name, 'elasticache', state_dir)}"
        )
    return out


def _cost(target: str, scenario: str, state_dir: str) -> str:
    """Instance-hours a run, from the last drills' restore-to-delete time."""
    history = drill_history(state_dir, DrillCapacity()).read()
    runs = [r for r in history if (r.target, r.scenario) == (target, scenario)
            and r.outcome != "deferred"][-5:]  # fmt: skip
    if not runs:
        return "its cost per run known after its first drill"
    hours = sum(sum(r.phases.values()) for r in runs) / len(runs) / 3600
    return f"about {hours:.2f} instance-hours a run (the last {len(runs)} drill(s))"


def _drills(target: Target, state_dir: str) -> tuple[list[str], list[str]]:
    """Each drill the target runs, with its schedule, next run, source and scratch; and the
    warnings about what cannot run as configured."""
    drills = target.drills
    if drills is None:
        return [], []
    scratch = drills.scratch
    where = (
        f"staging server {redact(scratch.dsn)}" if scratch.dsn
        else f"throwaway cluster in {scratch.dir or state_dir + '/drills'}"
        + (f" as OS user {scratch.user}" if scratch.user else "")
    )  # fmt: skip
    backups, redis = target.backups, target.redis
    sources = {
        "full_restore": (f"newest dump in {backups.store}" if backups else "") + (
            f" onto a new RDS instance ({drills.full_restore.rds.create.instance_class}) made "
            f"for it and deleted after; {_cost(target.name, 'full_restore', state_dir)}"
            if drills.full_restore and drills.full_restore.rds else ""
        ),
        "pitr": (
            f"pgBackRest stanza {drills.pitr.pgbackrest.stanza}"
            if drills.pitr and drills.pitr.pgbackrest
            else f"base backups in {drills.pitr.base_store}"
            if drills.pitr and drills.pitr.base_store
            else "no base backup configured (base_store or pgbackrest): it will fail, PITR "
            "impossible"
        )
        + (f", WAL from {backups.wal_store}" if backups else "")
        + (f", restored by method {drills.pitr.method}" if drills.pitr else ""),
        "cross_region": (
            f"copy in {backups.replica_store} of the newest verified dump" if backups else ""
        ),
        "redis": f"newest snapshot in {redis.snapshot_store}" if redis else "",
        **_aws_sources(target, state_dir),
    }
    lines = []
    for scenario in target.drill_scenarios():
        schedule = drills.schedule_of(scenario)
        upcoming = cron_trigger(schedule, drills.timezone).get_next_fire_time(
            None, datetime.now(UTC)
        )
        test, frequency, _, _ = RUNBOOK_TESTS[scenario]
        nxt = f"{upcoming:%Y-%m-%d %H:%M %Z}" if upcoming else "never"
        lines.append(
            f"{target.name}: drill {scenario} ({test}, {frequency} in the runbook; {schedule} "
            f"{drills.timezone}, next {nxt}, overdue after "
            f"{format_duration(drills.max_age_of(scenario))}): {sources[scenario]}"
            + {"redis": " into a scratch redis-server", **dict.fromkeys(AWS_DRILLS, "")}.get(
                scenario, "" if scenario == "full_restore" and drills.full_restore
                and drills.full_restore.rds else f" into a {where}"
            )
        )
    warnings = []
    pitr = drills.pitr
    if "pitr" in target.drill_scenarios() and pitr and not (pitr.base_store or pitr.pgbackrest):
        warnings.append(
            f"{target.name}: drills.pitr: no base_store nor pgbackrest: the drill fails, PITR "
            "needs a physical base backup (pg_basebackup -Ft, or pgBackRest's)"
        )
    try:
        isolated = isolation(scratch, client_only(scratch, target.drill_scenarios()))
        lines.append(f"{target.name}: drills isolated: {isolated.mode} ({isolated.why})")
        if isolated.executes_untrusted and not drills.trust_backups:
            warnings.append(
                f"{target.name}: drills: no isolation works here ({isolated.why}): plain SQL "
                "dumps and physical copies (pitr) are not restored unless drills.trust_backups "
                "is true; install bubblewrap or run drwatch as root with drills.scratch.user"
            )
    except IsolationUnavailable as exc:
        warnings.append(f"{target.name}: drills cannot run: {exc}")
    return lines, warnings


def validate(path: str, strict: bool, allow_missing_env: bool = False) -> int:
    """0 valid, 1 invalid (or, with `strict`, valid with a warning)."""
    loaded = load_or_report(path, allow_missing_env)
    if loaded is None:
        return 1
    jobs, _ = build_jobs(loaded.config)
    warnings: list[str] = []
    lines = [
        f"  {job.target}: {job.check} every {job.interval:g}s (deadline {job.timeout:g}s)"
        for job in jobs
    ]
    for target in loaded.config.targets:
        lines += [f"  {target.name}: {line}" for line in _layouts(target.backups)]
        drill_lines, drill_warnings = _drills(target, loaded.config.state_dir)
        lines += [f"  {line}" for line in drill_lines]
        warnings += drill_warnings
    lines += [f"  off: {off}" for off in loaded.off]
    if loaded.missing_env:
        lines.append(f"  not set (allowed): {', '.join(loaded.missing_env)}")
    if not jobs:
        warnings.append(
            "this config runs no check" + (" (every section is off)" if loaded.off else "")
        )
    verdict = "valid" if not warnings else (
        f"invalid under --strict: {len(warnings)} warning(s)" if strict
        else f"valid, with {len(warnings)} warning(s)"
    )  # fmt: skip
    print(f"{path}: {verdict}: {len(loaded.config.targets)} target(s), {len(jobs)} check(s)")
    if lines:
        print("\n".join(lines))
    for warning in warnings:
        print(f"{path}: warning: {warning}", file=sys.stderr)
    return 1 if strict and warnings else 0
