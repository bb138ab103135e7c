"""Verification that costs what changed, not what exists: the numbers a full run reports,
computed from what the previous runs kept (in state_dir) plus the rows that can have changed.

- Orphans: the child rows above the watermark (the child's integer primary key, or a configured
  monotonic column) less an overlap for transactions that commit late, plus the orphans already
  known; a full sweep when the parent saw deletes or key updates (pg_stat_user_tables), when a
  table was rewritten (TRUNCATE: a new relfilenode), when the watermark went backwards, and on
  its own schedule.
- Daily counts: in `checks.support.incremental_counts`.
- Gaps: the consecutive differences since the previous run's newest row less the threshold,
  merged with those kept (the gaps over the threshold, and the decreasing suffix maxima that
  give the largest difference as old ones leave the lookback window).

Rows inserted late with an old key or timestamp, below what is rescanned, are found by the next
full sweep (daily by default). On a standby, pg_stat_user_tables does not see the primary's
deletes: orphans from parent deletes are found by the sweep there.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pydantic import TypeAdapter

from checks.support.pg import Row, fetch_all, fetch_one
from core.statefile import read_state, write_state

log = logging.getLogger("drwatch.verification")

MAX_TRACKED_ORPHANS = 10_000  # beyond: counted by a full scan every run
INTEGER_TYPES = ("int2", "int4", "int8")
State = dict[str, Any]
Table = sql.Composable


_ITEMS = TypeAdapter(dict[str, dict[str, Any]])


class StateFile:
    """Every item's state for one target, as JSON in state_dir: it survives restarts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.items: dict[str, State] = {}
        if path is not None:  # what does not fit is set aside: a full sweep rebuilds it
            self.items = read_state(path, _ITEMS) or {}

    def item(self, key: str) -> State:
        return self.items.setdefault(key, {})

    def save(self, keep: set[str]) -> None:
        self.items = {k: v for k, v in self.items.items() if k in keep}
        if self.path is not None:  # the state still works from memory when it cannot
            write_state(self.path, json.dumps(self.items, sort_keys=True))


def regclass(conn: psycopg.Connection[Row], table: Table) -> str:
    return table.as_string(conn)


def table_changes(conn: psycopg.Connection[Row], table: Table) -> list[int]:
    """What makes kept results stale: deletes and non-HOT updates (a key or an indexed column
    changed) since the server's statistics began, and the relation's file (TRUNCATE changes it)."""
    row = fetch_one(
        conn,
        "SELECT coalesce((SELECT n_tup_del + n_tup_upd - n_tup_hot_upd FROM pg_stat_user_tables "
        "WHERE relid = %(t)s::regclass), 0) AS changes, "
        "pg_relation_filenode(%(t)s::regclass) AS node",
        {"t": regclass(conn, table)},
        what="table statistics",
    )
    return [int(row["changes"]), int(row["node"] or 0)]


def sweep_due(state: State, marks: dict[str, Any], every: float, now: float) -> bool:
    """A full run is due: nothing kept, its schedule, or something a kept result rests on moved."""
    return (
        not state
        or now - float(state.get("swept_at", 0)) >= every
        or any(state.get(name) != value for name, value in marks.items())
    )


def integer_watermark(
    conn: psycopg.Connection[Row], table: Table, configured: str | None
) -> str | None:
    """The configured column if it is an integer, else the table's one-column integer primary
    key; None when there is neither (the check then counts in full every run)."""
    types = sql.SQL(", ").join(sql.SQL("{}::regtype").format(sql.Literal(t)) for t in INTEGER_TYPES)
    if configured:
        query = sql.SQL(
            "SELECT attname FROM pg_attribute WHERE attrelid = %(t)s::regclass "
            "AND attname = %(c)s AND atttypid IN ({types})"
        ).format(types=types)
    else:
        query = sql.SQL(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
            "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = %(t)s::regclass AND i.indisprimary AND i.indnkeyatts = 1 "
            "AND a.atttypid IN ({types})"
        ).format(types=types)
    rows = fetch_all(conn, query, {"t": regclass(conn, table), "c": configured}, what="watermark")
    return str(rows[0]["attname"]) if rows else None


def orphans(
    conn: psycopg.Connection[Row],
    orphan_query: sql.Composable,
    child: Table,
    parent: Table,
    watermark: str,
    overlap: int,
    state: State,
    sweep_every: float,
) -> tuple[int, bool]:
    """(orphan rows, whether this run swept). `orphan_query` selects the watermark of every
    orphan row (`c.<watermark> AS wm`) and ends in a WHERE to extend."""
    marks = {
        "watermark_column": watermark,
        "parent": table_changes(conn, parent),
        "child": table_changes(conn, child),
    }
    wm = sql.Identifier(watermark)
    newest = fetch_one(
        conn, sql.SQL("SELECT max({wm}) AS n FROM {t}").format(wm=wm, t=child), what="watermark"
    )["n"]
    now = time.time()
    known = state.get("orphans")
    try:  # a watermark beyond the table's newest row, or one that is no number: swept in full
        backwards = newest is not None and int(newest) < int(state.get("watermark") or 0)
        known = None if known is None else [int(k) for k in known]
    except (TypeError, ValueError):
        backwards, known = True, None
    if backwards or known is None or sweep_due(state, marks, sweep_every, now):
        rows = fetch_all(
            conn,
            sql.SQL("{q} LIMIT %(cap)s").format(q=orphan_query),
            {"cap": MAX_TRACKED_ORPHANS + 1},
            what="orphans (full sweep)",
        )
        found = [int(r["wm"]) for r in rows]
        count = len(found)
        if count > MAX_TRACKED_ORPHANS:
            total = sql.SQL("SELECT count(*) AS n FROM ({q}) AS o").format(q=orphan_query)
            count = int(fetch_one(conn, total, what="orphans")["n"])
        state.clear()
        state.update(marks, swept_at=now)
        swept = True
    else:
        low = int(state.get("watermark") or 0) - overlap
        # Two index scans, never one with an OR the planner may answer with a full scan.
        rows = fetch_all(
            conn,
            sql.SQL("{q} AND c.{wm} > %(low)s").format(q=orphan_query, wm=wm),
            {"low": low},
            what="orphans (new rows)",
        )
        if known:
            rows += fetch_all(
                conn,
                sql.SQL("{q} AND c.{wm} = ANY(%(known)s) AND c.{wm} <= %(low)s").format(
                    q=orphan_query, wm=wm
                ),
                {"known": known, "low": low},
                what="orphans (known ones)",
            )
        found = [int(r["wm"]) for r in rows]
        count = len(found)
        swept = False
    state["orphans"] = found if len(found) <= MAX_TRACKED_ORPHANS else None
    state["watermark"] = int(newest) if newest is not None else 0
    return count, swept


def gaps(
    conn: psycopg.Connection[Row],
    table: Table,
    column: str,
    threshold: float,
    lookback: float,
    state: State,
    sweep_every: float,
) -> tuple[int, float, bool]:
    """(gaps over the threshold, largest difference, whether swept) between consecutive rows
    that are both inside the lookback window."""
    col = sql.Identifier(column)
    marks = {"table": table_changes(conn, table)}
    row = fetch_one(
        conn,
        sql.SQL(
            "SELECT EXTRACT(EPOCH FROM now())::float8 AS now, "
            "EXTRACT(EPOCH FROM max({col}))::float8 AS newest FROM {t}"
        ).format(col=col, t=table),
        what="gaps (newest row)",
    )
    now, newest = float(row["now"]), row["newest"]
    swept = sweep_due(state, marks, sweep_every, time.time()) or not _gaps_state_holds(
        state, newest, now, lookback
    )
    if swept:
        scan_from = now - lookback
        kept_gaps: list[list[float]] = []
        kept_maxima: list[list[float]] = []
        state.clear()
        state.update(marks, swept_at=time.time())
    else:  # what the previous run saw, less the threshold: rows may still arrive there
        scan_from = float(state.get("newest") or now - lookback) - threshold
        kept_gaps = [g for g in state.get("gaps", []) if g[0] < scan_from]
        kept_maxima = [m for m in state.get("maxima", []) if m[0] < scan_from]
    # Differences starting from now on stay as they are ("stable") once their start is a
    # threshold older than the newest row; the later ones are scanned again next run. Returned:
    # every difference over the threshold, every unstable one, and each stable one larger than
    # every later stable one (the largest in the window as older ones leave it).
    stable = (float(newest) if newest is not None else now) - threshold
    rows = fetch_all(
        conn,
        sql.SQL(
            "WITH d AS (SELECT EXTRACT(EPOCH FROM prev)::float8 AS start, "
            "EXTRACT(EPOCH FROM {col} - prev)::float8 AS gap FROM (SELECT {col}, "
            "lag({col}) OVER (ORDER BY {col}) AS prev FROM {t} "
            "WHERE {col} >= to_timestamp(%(from)s)) s WHERE prev IS NOT NULL), "
            "m AS (SELECT start, gap, max(gap) FILTER (WHERE start < %(stable)s) "
            "OVER (ORDER BY start DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) "
            "AS later FROM d) "
            "SELECT start, gap FROM m WHERE gap > %(threshold)s OR start >= %(stable)s "
            "OR later IS NULL OR gap > later ORDER BY start"
        ).format(col=col, t=table),
        {"from": scan_from, "stable": stable, "threshold": threshold},
        what="gaps (full sweep)" if swept else "gaps (new rows)",
    )
    scanned = [[float(r["start"]), float(r["gap"])] for r in rows]
    horizon = now - lookback
    over = [g for g in kept_gaps + scanned if g[1] > threshold and g[0] >= horizon]
    candidates = [m for m in kept_maxima + scanned if m[0] >= horizon]
    state.update(
        gaps=over,
        maxima=_suffix_maxima([m for m in candidates if m[0] < stable]),
        newest=newest,
    )
    return len(over), max((m[1] for m in candidates), default=0.0), swept


def _gaps_state_holds(state: State, newest: float | None, now: float, lookback: float) -> bool:
    """Whether what the previous run kept can be true of the live table: its newest row no
    later than the table's, every kept difference inside the window and no longer than it.
    State is a file anyone with access to state_dir could have changed: what does not hold is
    swept in full, never trusted (a watermark in the future would hide every gap)."""
    try:
        kept_newest = state.get("newest")
        if kept_newest is not None and (newest is None or float(kept_newest) > float(newest)):
            return False
        for start, gap in [*state.get("gaps", []), *state.get("maxima", [])]:
            if not (now - lookback <= float(start) <= now and 0 <= float(gap) <= lookback):
                return False
    except (TypeError, ValueError):
        return False
    return True


def _suffix_maxima(entries: list[list[float]]) -> list[list[float]]:
    """Entries, by start, each larger than every later one: a smaller one can never be the
    largest in the window while the later, larger one is still in it."""
    out: list[list[float]] = []
    for entry in sorted(entries, key=lambda e: e[0], reverse=True):
        if not out or entry[1] > out[-1][1]:
            out.append(entry)
    return out[::-1]
