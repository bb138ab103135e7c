"""What every drill checks on the database it restored: the target's verification items, each
watched table's rows against production, and index integrity.

Rows are compared up to the backup's own time (the dump's start, the last replayed transaction),
less what a late commit can explain, or up to the copy's newest row if that is later: a table
that came back empty or short fails the drill by name, although it has no newest row to compare
up to.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from checks.support.incremental import StateFile
from checks.support.pg import fetch_one, session
from checks.verification import VerificationCheck
from core.config.postgres import PostgresConfig, VerificationOptions
from core.config.schema import Target
from core.durations import render_ages
from core.humanize import count
from core.programs import PG_AMCHECK, child_env
from exporter.drills.app_checks import missing_on_copy, sequences_behind
from exporter.drills.heartbeat import measured_loss, production_tick
from exporter.drills.result import Timer

# A row stamped before the backup's time may commit after it (and so not be in the backup): a
# transaction's own length. Rows older than this before the backup's time must be in the copy.
LATE_COMMIT_SECONDS = 300.0


def heartbeat_at_start(target: Target, timer: Timer) -> None:
    """Production's heartbeat as the drill starts (postgres.heartbeat): what a primary lost
    now would have held, for the copy's measured data loss."""
    pg = target.postgres
    if pg is not None and pg.heartbeat is not None:
        timer.result.values["heartbeat_at_start"] = production_tick(pg)


def check_copy(
    target: Target,
    copy: str,
    timer: Timer,
    backup_time: float | None = None,
    whole_server: bool = False,
    rpo: float | None = None,
) -> list[str]:
    """The problems found on the copy (none: it is a good one). `whole_server`: a physical
    copy, `copy` its superuser: amcheck is installed where missing and every database checked.
    `rpo`: the scenario's objective, which the heartbeat's measured data loss must meet (None:
    the copy is of a point in the past, not measured)."""
    problems: list[str] = []
    pg = target.postgres
    if pg is not None and not pg.verification.is_empty():
        # Production's own SQL stays there; the copy is read itself, never the standby, in full.
        options = pg.verification.model_copy(update={"custom": [], "dsn": None})
        if not options.is_empty():
            on_copy = _postgres(copy, timer, verification=options)
            seen = VerificationCheck(on_copy, options, StateFile(None)).run()
            timer.result.values["verification"] = render_ages(seen.summary)
            problems += [f"verification on the copy: {e}" for e in seen.errors]
        problems += _compare_rows(pg, options, copy, timer, backup_time)
    heapallindexed = target.drills is not None and target.drills.amcheck == "heapallindexed"
    problems += _amcheck(copy, timer, whole_server, heapallindexed)
    problems += _measured_loss(target, copy, timer, rpo)
    findings = sequences_behind(copy, timer)
    if pg is not None:
        findings += missing_on_copy(pg, copy, timer)
    if target.drills is not None and target.drills.app_checks == "required":
        problems += findings
    elif findings:
        timer.result.values["warnings"] = findings
    return problems


def _measured_loss(target: Target, copy: str, timer: Timer, rpo: float | None) -> list[str]:
    pg = target.postgres
    truth = timer.result.values.get("heartbeat_at_start")
    if pg is None or pg.heartbeat is None or truth is None:
        return []
    bounded = f"-c statement_timeout={int(max(1.0, timer.remaining()) * 1000)}"
    with psycopg.connect(copy, connect_timeout=10, options=bounded) as conn:
        loss, problem = measured_loss(conn, pg.heartbeat, truth, rpo)
    if loss is not None:
        timer.result.values["measured_data_loss_seconds"] = round(loss, 3)
    return [problem] if problem else []


def _postgres(dsn: str, timer: Timer, **fields: object) -> PostgresConfig:
    """The scratch copy as a section of the config, bounded by what is left of the deadline."""
    limit = max(1.0, timer.remaining())
    return PostgresConfig.model_validate({"dsn": dsn}).model_copy(
        update={"timeout": limit, "statement_timeout": limit, **fields}
    )


def _watched(*items: Sequence[Any]) -> list[tuple[str, sql.Identifier, sql.Identifier]]:
    """The (name, table, column) the verification items watch, each once, in a stable order."""
    columns = {(i.schema_name, i.table, i.column) for each in items for i in each}
    return [
        (f"{schema}.{table}" if schema else table,
         sql.Identifier(schema, table) if schema else sql.Identifier(table),
         sql.Identifier(column))
        for schema, table, column in sorted(columns, key=str)
    ]  # fmt: skip


def _cutoff(newest: object, backup_time: float | None) -> object:
    """Up to when production's rows must all be in the copy: the backup's time less a late
    commit, or the copy's newest row if later (a timestamp column; others by the newest)."""
    if backup_time is None or (newest is not None and not isinstance(newest, datetime)):
        return newest
    at = datetime.fromtimestamp(backup_time - LATE_COMMIT_SECONDS, UTC)
    if isinstance(newest, datetime) and newest.tzinfo is None:
        at = at.replace(tzinfo=None)  # a timestamp without time zone: compared as UTC
    return at if newest is None or at > newest else newest


def _compare_rows(
    production: PostgresConfig,
    options: VerificationOptions,
    copy: str,
    timer: Timer,
    backup_time: float | None,
) -> list[str]:
    """Rows of each watched table, copy against production up to the cutoff."""
    problems = []
    on_copy = _postgres(copy, timer)
    for name, ident, col in _watched(options.freshness, options.daily_counts, options.gaps):
        upto = sql.SQL("SELECT count(*) AS n FROM {t} WHERE {c} <= %(cutoff)s").format(
            c=col, t=ident
        )
        with session(on_copy) as conn:
            copied = fetch_one(
                conn,
                sql.SQL("SELECT count(*) AS n, max({c}) AS newest FROM {t}").format(c=col, t=ident),
                what=f"rows of {name} in the copy",
            )
            cutoff = _cutoff(copied["newest"], backup_time)
            held = copied["n"] if cutoff is None or cutoff == copied["newest"] else fetch_one(
                conn, upto, {"cutoff": cutoff}, what=f"rows of {name} in the copy"
            )["n"]  # fmt: skip
        expected = 0
        if cutoff is not None:
            with session(production) as conn:
                expected = fetch_one(
                    conn, upto, {"cutoff": cutoff}, what=f"rows of {name} in production"
                )["n"]
        missing = max(0, int(expected) - int(held))
        timer.result.tables[name] = (int(copied["n"]), missing)
        newest = copied["newest"]
        if isinstance(newest, datetime):
            stamp = newest.timestamp()
            timer.result.recovered_to = max(timer.result.recovered_to or stamp, stamp)
        if missing:
            problems.append(
                f"{name}: {missing} rows production has up to {cutoff} are missing "
                f"(the copy holds {int(copied['n'])})"
            )
    return problems


def _amcheck(copy: str, timer: Timer, whole_server: bool, heapallindexed: bool) -> list[str]:
    """Heap and B-tree integrity of the copy with pg_amcheck: a page that does not read, a
    tuple or an index entry that is wrong fails the drill naming the relation and block. A
    dump's copy is read as the restoring role (amcheck installed beforehand, its functions
    granted); a physical copy as its superuser, every database, amcheck installed where
    missing."""
    binary = PG_AMCHECK.find()
    if binary is None:
        timer.result.values["amcheck"] = "pg_amcheck not installed"
        return []
    params = conninfo_to_dict(copy)
    env = child_env(
        PGHOST=str(params.get("host", "")),
        PGPORT=str(params.get("port", "5432")),
        PGUSER=str(params.get("user", "")),
        PGPASSWORD=str(params.get("password", "")),
    )
    scope = ["--install-missing", "--all"] if whole_server else [str(params["dbname"])]
    extra = ["--heapallindexed"] if heapallindexed else []
    proc = subprocess.run(
        [binary, *extra, *scope, "--maintenance-db", str(params["dbname"])],
        capture_output=True, text=True, env=env, timeout=max(1.0, timer.remaining()),
    )  # fmt: skip
    output = (proc.stdout + proc.stderr).strip()
    if "amcheck" in output and "not installed" in output:
        timer.result.values["amcheck"] = "amcheck not installed in the copy's server"
        return []
    timer.result.values["amcheck"] = "ok" if proc.returncode == 0 else "failed"
    if proc.returncode != 0:
        return [f"pg_amcheck: {' | '.join(_findings(output)[:3])}"]
    return []


_RELATION = re.compile(r'^(heap table|btree index|toast table) "([^"]+)"')


def _findings(output: str) -> list[str]:
    """pg_amcheck's findings as "relation: what", its page-verification warnings left out."""
    found, relation = [], ""
    for line in output.splitlines():
        if line.startswith("WARNING:"):
            continue
        if match := _RELATION.match(line):
            relation = f"{match[1]} {match[2]}"
        elif line.startswith((" ", "\t")) and relation:
            found.append(f"{relation}: {line.strip().removeprefix('ERROR:').strip()}")
        elif line.strip():
            found.append(line.strip())
    return found


def past_the_target(target: Target, copy: str, when: datetime, timer: Timer) -> list[str]:
    """Both sides of a time target proven on the watched tables: rows stamped up to it are
    compared with production by check_copy; here, none stamped after it may be in the copy
    (their transactions began after it, so they committed after it). Recorded per table."""
    pg = target.postgres
    if pg is None:
        return []
    problems, proven = [], {}
    with session(_postgres(copy, timer)) as conn:
        for name, ident, col in _watched(pg.verification.freshness, pg.verification.gaps):
            query = sql.SQL("SELECT count(*) AS n FROM {} WHERE {} > %(at)s").format(ident, col)
            after = int(fetch_one(conn, query, {"at": when}, what=f"rows of {name}")["n"])
            proven[name] = after == 0
            if after:
                problems.append(
                    f"{name}: {count(after, 'row')} stamped after the target {when.isoformat()} "
                    "in the copy: recovery went past it"
                )
            timer.remaining()
    timer.result.values["after_target_absent"] = proven
    return problems

