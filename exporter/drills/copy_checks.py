"""What every drill checks on the database it restored: the target's verification items, each
watched table's rows against production up to the copy's newest row, and index integrity."""

from __future__ import annotations

import os
import subprocess

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from checks.support.incremental import StateFile
from checks.support.pg import fetch_one, session
from checks.verification import VerificationCheck
from core.config.postgres import PostgresConfig, VerificationOptions
from core.config.schema import Target
from core.programs import PG_AMCHECK
from exporter.drills.result import Timer


def check_copy(target: Target, copy: str, timer: Timer) -> list[str]:
    """The problems found on the copy (none: it is a good one)."""
    problems: list[str] = []
    pg = target.postgres
    if pg is not None and not pg.verification.is_empty():
        # Production's own SQL stays there; the copy is read itself, never the standby, in full.
        options = pg.verification.model_copy(update={"custom": [], "dsn": None})
        if not options.is_empty():
            on_copy = _postgres(copy, timer, verification=options)
            seen = VerificationCheck(on_copy, options, StateFile(None)).run()
            timer.result.values["verification"] = seen.summary
            problems += [f"verification on the copy: {e}" for e in seen.errors]
        problems += _compare_rows(pg, options, copy, timer)
    problems += _amcheck(copy, timer)
    return problems


def _postgres(dsn: str, timer: Timer, **fields: object) -> PostgresConfig:
    """The scratch copy as a section of the config, bounded by what is left of the deadline."""
    limit = max(1.0, timer.remaining())
    return PostgresConfig.model_validate({"dsn": dsn}).model_copy(
        update={"timeout": limit, "statement_timeout": limit, **fields}
    )


def _compare_rows(
    production: PostgresConfig, options: VerificationOptions, copy: str, timer: Timer
) -> list[str]:
    """Rows of each watched table, copy against production up to the copy's newest row."""
    tables = {(i.schema_name, i.table, i.column) for i in options.freshness}
    tables |= {(i.schema_name, i.table, i.column) for i in options.daily_counts}
    tables |= {(i.schema_name, i.table, i.column) for i in options.gaps}
    problems = []
    on_copy = _postgres(copy, timer)
    for schema, table, column in sorted(tables, key=str):
        name = f"{schema}.{table}" if schema else table
        ident = sql.Identifier(schema, table) if schema else sql.Identifier(table)
        col = sql.Identifier(column)
        with session(on_copy) as conn:
            copied = fetch_one(
                conn,
                sql.SQL("SELECT count(*) AS n, max({c}) AS newest FROM {t}").format(c=col, t=ident),
                what=f"rows of {name} in the copy",
            )
        newest = copied["newest"]
        with session(production) as conn:
            expected = (
                fetch_one(
                    conn,
                    sql.SQL("SELECT count(*) AS n FROM {t} WHERE {c} <= %(newest)s").format(
                        c=col, t=ident
                    ),
                    {"newest": newest},
                    what=f"rows of {name} in production",
                )["n"]
                if newest is not None
                else 0
            )
        missing = max(0, int(expected) - int(copied["n"]))
        timer.result.tables[name] = (int(copied["n"]), missing)
        if newest is not None:
            stamp = newest.timestamp()
            timer.result.recovered_to = max(timer.result.recovered_to or stamp, stamp)
        if missing:
            problems.append(f"{name}: {missing} rows production has up to {newest} are missing")
    return problems


def _amcheck(copy: str, timer: Timer) -> list[str]:
    """Index integrity of the copy with pg_amcheck, where it is installed."""
    binary = PG_AMCHECK.find()
    if binary is None:
        timer.result.values["amcheck"] = "pg_amcheck not installed"
        return []
    params = conninfo_to_dict(copy)
    env = {
        **os.environ,
        "PGHOST": str(params.get("host", "")),
        "PGPORT": str(params.get("port", "5432")),
        "PGUSER": str(params.get("user", "")),
        "PGPASSWORD": str(params.get("password", "")),
    }
    proc = subprocess.run(
        [binary, "--install-missing", str(params["dbname"])],
        capture_output=True, text=True, env=env, timeout=max(1.0, timer.remaining()),
    )  # fmt: skip
    timer.result.values["amcheck"] = "ok" if proc.returncode == 0 else "failed"
    if proc.returncode != 0:
        first = (proc.stdout + proc.stderr).strip().splitlines()[:2]
        return [f"pg_amcheck: {' | '.join(first)}"]
    return []
