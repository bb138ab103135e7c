"""Daily counts that cost what changed (see `checks.support.incremental`): 24-hour windows back
from now; the last `mutable_days` counted directly, older windows from per-minute counts kept
once their minutes can no longer change, plus the two partial minutes at each window's edge."""

from __future__ import annotations

import math
import time
from decimal import Decimal

import psycopg
from psycopg import sql

from checks.support.incremental import State, Table, sweep_due, table_changes
from checks.support.pg import Row, fetch_all, fetch_one


def daily_counts(
    conn: psycopg.Connection[Row],
    table: Table,
    column: str,
    days: int,
    mutable_days: int,
    state: State,
    sweep_every: float,
) -> tuple[dict[int, int], bool]:
    """Rows per 24-hour window back from the transaction's now(), by days ago; whether swept."""
    col = sql.Identifier(column)
    marks = {"table": table_changes(conn, table)}
    now = time.time()
    swept = sweep_due(state, marks, sweep_every, now)
    if swept:
        state.clear()
        state.update(marks, swept_at=now, minutes={}, upto=None)
    # One index-only range count per recent window: no expression evaluated per row. Days are
    # 86,400 s, as the windows' labels say (a calendar day can be 23 or 25 hours).
    recent = fetch_all(
        conn,
        sql.SQL(
            "SELECT k AS days_ago, (SELECT count(*) FROM {t} "
            "WHERE {col} > now() - make_interval(secs => 86400 * (k + 1)) "
            "AND {col} <= now() - make_interval(secs => 86400 * k)) AS n "
            "FROM generate_series(0, %(last)s) AS k"
        ).format(col=col, t=table),
        {"last": min(days, mutable_days) - 1},
        what="daily counts (recent)",
    )
    counts = dict.fromkeys(range(days), 0)
    for row in recent:
        counts[int(row["days_ago"])] = int(row["n"])
    if days > mutable_days:
        _older_windows(conn, table, col, days, mutable_days, state, counts)
    return counts, swept


def _older_windows(
    conn: psycopg.Connection[Row],
    table: Table,
    col: sql.Composable,
    days: int,
    mutable_days: int,
    state: State,
    counts: dict[int, int],
) -> None:
    """Windows older than `mutable_days`: whole minutes from what is kept (a minute M holds the
    rows in (60(M-1), 60M] seconds), the two partial minutes at each edge counted directly."""
    edges = fetch_one(
        conn,
        "SELECT "
        "floor((EXTRACT(EPOCH FROM now()) - 86400 * %(m)s) / 60)::bigint AS upto, "
        "ceil((EXTRACT(EPOCH FROM now()) - 86400 * %(d)s) / 60)::bigint - 1 AS oldest",
        {"m": mutable_days, "d": days},
        what="daily counts (edges)",
    )
    upto, oldest = int(edges["upto"]), int(edges["oldest"])
    if not _minutes_hold(state, upto):  # kept counts that cannot be true: counted again
        state["minutes"], state["upto"] = {}, None
    minutes: dict[str, int] = state.setdefault("minutes", {})
    start = state.get("upto")
    start = oldest if start is None or int(start) < oldest else int(start)
    if upto > start:  # minutes that have become immutable since the last run: counted once
        rows = fetch_all(
            conn,
            sql.SQL(
                "SELECT ceil(EXTRACT(EPOCH FROM {col}) / 60)::bigint AS m, count(*) AS n "
                "FROM {t} WHERE {col} > to_timestamp(%(lo)s) AND {col} <= to_timestamp(%(hi)s) "
                "GROUP BY 1"
            ).format(col=col, t=table),
            {"lo": 60 * start, "hi": 60 * upto},
            what="daily counts (minutes)",
        )
        minutes.update({str(r["m"]): int(r["n"]) for r in rows})
    state["upto"] = upto
    for key in [k for k in minutes if int(k) <= oldest]:
        del minutes[key]
    # Each edge: rows of its minute before it (the newer window's) and after it (the older's).
    edge_days = list(range(mutable_days, days + 1))
    parts = fetch_all(
        conn,
        sql.SQL(
            "SELECT e.k, EXTRACT(EPOCH FROM e.at) AS at, "
            "count(t.{col}) FILTER (WHERE t.{col} <= e.at) AS before, "
            "count(t.{col}) FILTER (WHERE t.{col} > e.at) AS after "
            "FROM (SELECT k, now() - make_interval(secs => 86400 * k) AS at "
            "      FROM unnest(%(ks)s::int[]) AS k) AS e "
            "LEFT JOIN {t} AS t "
            "ON t.{col} > to_timestamp(floor(EXTRACT(EPOCH FROM e.at) / 60) * 60) "
            "AND t.{col} <= to_timestamp(ceil(EXTRACT(EPOCH FROM e.at) / 60) * 60) "
            "GROUP BY e.k, e.at"
        ).format(col=col, t=table),
        {"ks": edge_days},
        what="daily counts (edges)",
    )
    edge = {int(r["k"]): r for r in parts}
    for k in range(mutable_days, days):
        newer, older = edge[k], edge[k + 1]  # window k is (older edge, newer edge]
        first_whole = _ceil_minute(older["at"]) + 1
        last_whole = _floor_minute(newer["at"])
        whole = sum(minutes.get(str(m), 0) for m in range(first_whole, last_whole + 1))
        counts[k] = int(older["after"]) + whole + int(newer["before"])


def _minutes_hold(state: State, upto: int) -> bool:
    """Kept minutes no later than now's last immutable one, counts that are counts."""
    try:
        kept = state.get("upto")
        if kept is not None and int(kept) > upto:
            return False
        return all(int(k) <= upto and int(v) >= 0 for k, v in state.get("minutes", {}).items())
    except (TypeError, ValueError, AttributeError):
        return False


def _ceil_minute(epoch: Decimal) -> int:
    return math.ceil(epoch / 60)  # exact: EXTRACT(EPOCH ...) is numeric


def _floor_minute(epoch: Decimal) -> int:
    return math.floor(epoch / 60)
