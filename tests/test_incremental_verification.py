"""Incremental verification reports exactly what a full run reports: after new rows, parent
deletes, late-arriving rows and a truncated table; and it reads only what changed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from checks.base import Status
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import CheckHarness, make_config, sample

TABLES = """
CREATE TABLE debates (id serial PRIMARY KEY, created_at timestamptz NOT NULL);
CREATE INDEX ON debates (created_at);
CREATE TABLE messages (id bigserial PRIMARY KEY, debate_id int);
-- Ten days of debates at 5 s and 50 s past a minute, with a 3-hour hole 4 days ago and one 6
-- days ago; windows end at now(), between 10 s and 45 s past a minute when compared (below).
INSERT INTO debates (created_at)
SELECT date_trunc('minute', now()) - make_interval(mins => m, secs => -s)
FROM generate_series(1, 14400, 7) AS m, (VALUES (5), (50)) AS v(s)
WHERE m NOT BETWEEN 5760 AND 5940 AND m NOT BETWEEN 8640 AND 8820;
INSERT INTO messages (debate_id) SELECT id FROM debates, generate_series(1, 2);
INSERT INTO messages (debate_id) VALUES (1000000), (1000001), (NULL);
"""

VERIFICATION = {
    "orphans": [
        {
            "table": "messages",
            "column": "debate_id",
            "parent_table": "debates",
            "parent_column": "id",
        }
    ],
    "daily_counts": [{"table": "debates", "column": "created_at", "days": 10}],
    "gaps": [{"table": "debates", "column": "created_at", "threshold": "1h", "lookback": "7d"}],
}
COMPARED = ("drwatch_table_orphan_rows", "drwatch_table_rows", "drwatch_table_gaps",
            "drwatch_table_largest_gap_seconds")  # fmt: skip


def _harness(cluster: PgCluster, state: Path) -> CheckHarness:
    pg = {"dsn": cluster.dsn(), "verification": VERIFICATION}
    return CheckHarness(make_config([{"name": "db", "postgres": pg}], state_dir=str(state)))


def _numbers(result: Any) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, s.values): s.value for s in result.samples if s.name in COMPARED}


def _sweeps(result: Any) -> dict[str, float]:
    return {
        s.values[0]: s.value
        for s in result.samples
        if s.name == "drwatch_verification_item_last_full_sweep_timestamp_seconds"
    }


def _mid_minute() -> None:
    """Rows sit at 5 s and 50 s past a minute and windows end at now(): compare in between."""
    wait_until(lambda: 10 < time.time() % 60 < 45, 60, interval=0.2, what="mid-minute")


@pytest.fixture
def estate(cluster: PgCluster, tmp_path: Path) -> tuple[PgCluster, CheckHarness, Path]:
    cluster.execute(TABLES)
    return cluster, _harness(cluster, tmp_path / "kept"), tmp_path


# What a full run reports, straight from the whole tables (the queries before issue 16).
FULL = """
SELECT 'orphans' AS what, NULL::int AS k, count(*)::float8 AS n FROM messages c
 WHERE c.debate_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM debates p WHERE p.id = c.debate_id)
UNION ALL
SELECT 'day', floor(EXTRACT(EPOCH FROM now() - created_at) / 86400)::int, count(*) FROM debates
 WHERE created_at > now() - interval '10 days' AND created_at <= now() GROUP BY 2
UNION ALL
SELECT 'gaps', NULL, count(*) FILTER (WHERE gap > 3600) FROM g
UNION ALL
SELECT 'largest', NULL, coalesce(max(gap), 0) FROM g
"""
GAPS = """
WITH g AS (SELECT EXTRACT(EPOCH FROM created_at - lag(created_at) OVER (ORDER BY created_at))::float8
           AS gap FROM debates WHERE created_at >= now() - interval '7 days')
"""


def _full(cluster: PgCluster) -> dict[tuple[str, tuple[str, ...]], float]:
    rows = cluster.execute(GAPS + FULL)
    table, fk = ("messages", "debate_id", "debates"), ("debates",)
    out = {("drwatch_table_orphan_rows", table): 0.0}
    out.update({("drwatch_table_rows", (*fk, f"{k * 24}-{(k + 1) * 24}h")): 0.0 for k in range(10)})
    for what, k, n in rows:
        if what == "orphans":
            out[("drwatch_table_orphan_rows", table)] = n
        elif what == "day":
            out[("drwatch_table_rows", (*fk, f"{k * 24}-{(k + 1) * 24}h"))] = n
        elif what == "gaps":
            out[("drwatch_table_gaps", fk)] = n
        else:
            out[("drwatch_table_largest_gap_seconds", fk)] = pytest.approx(n, abs=1e-6)
    return out


def _same_as_full(estate: tuple[PgCluster, CheckHarness, Path], name: str) -> Any:
    cluster, incremental, _ = estate
    _mid_minute()
    seen = incremental.run("verification")
    assert seen.up, seen.summary
    assert _numbers(seen) == _full(cluster), name
    return seen


def test_incremental_numbers_are_the_full_numbers(estate: Any) -> None:
    cluster = estate[0]
    first = _same_as_full(estate, "first")
    assert sample(first, "drwatch_table_orphan_rows", table="messages", column="debate_id",
                  parent_table="debates") == 2  # fmt: skip
    assert sample(first, "drwatch_table_gaps", table="debates") == 2
    assert sample(first, "drwatch_table_rows", table="debates", window="72-96h") > 0
    swept = _sweeps(first)
    assert set(swept) == {"orphans[0]", "daily_counts[0]", "gaps[0]"}

    # New rows: debates and messages, one of them an orphan.
    cluster.execute(
        "INSERT INTO debates (created_at) VALUES (date_trunc('minute', now()));"
        "INSERT INTO messages (debate_id) SELECT max(id) FROM debates;"
        "INSERT INTO messages (debate_id) VALUES (2000000);"
    )
    after_new = _same_as_full(estate, "new rows")
    assert _sweeps(after_new) == swept  # read incrementally: no full sweep

    # A late parent resolves an orphan; a late child, below the watermark, is an orphan.
    cluster.execute(
        "INSERT INTO debates (id, created_at) VALUES (1000000, date_trunc('minute', now()) - interval '1 day');"
        "INSERT INTO messages (id, debate_id) VALUES ((SELECT max(id) - 3 FROM messages), 3000000)"
        " ON CONFLICT DO NOTHING;"
    )
    late = _same_as_full(estate, "late rows")
    assert _sweeps(late) == swept

    # A parent deleted: its messages become orphans, which only a sweep can see.
    cluster.execute("DELETE FROM debates WHERE id = 10")
    deleted = _same_as_full(estate, "parent delete")
    assert _sweeps(deleted)["orphans[0]"] > swept["orphans[0]"]

    # TRUNCATE and new rows: the watermark starts again.
    cluster.execute(
        "TRUNCATE messages; INSERT INTO messages (debate_id) VALUES (1), (2), (4000000)"
    )
    truncated = _same_as_full(estate, "truncate")
    assert sample(truncated, "drwatch_table_orphan_rows", table="messages", column="debate_id",
                  parent_table="debates") == 1  # fmt: skip


def test_state_survives_a_restart_and_reads_less(estate: Any, tmp_path: Path) -> None:
    cluster, incremental, _ = estate
    first = incremental.run("verification")
    again = _harness(cluster, tmp_path / "kept").run("verification")  # a new process, same state
    assert _sweeps(again) == _sweeps(first)
    assert again.status == first.status == Status.WARNING  # gaps and orphans are findings
    assert (tmp_path / "kept" / "verification-db.json").exists()


@pytest.mark.parametrize(
    ("item", "tampered"),
    [
        ("gaps", {"newest": 4e9}),  # a newest row in the future: nothing after it to scan
        ("gaps", {"maxima": [[1e300, 1e300]]}),  # a difference outside any window
        ("gaps", {"newest": "soon"}),  # not a number at all
        ("orphans", {"watermark": 10**12}),  # beyond the table's max: no new row to look at
        ("orphans", {"orphans": ["x"]}),
        ("daily", {"minutes": {"three days ago": -5000}}),  # a negative count inside the window
    ],
)
def test_tampered_state_is_checked_against_the_live_table(
    estate: Any, item: str, tampered: dict[str, Any]
) -> None:
    """State in state_dir is anyone's who can write there: numbers that cannot be true of the
    live table send the item to a full sweep, and the numbers stay the full ones."""
    import json

    cluster, incremental, tmp_path = estate
    _mid_minute()
    incremental.run("verification")
    path = tmp_path / "kept" / "verification-db.json"
    state = json.loads(path.read_text())
    key = next(k for k in state if k.startswith(item))
    if "minutes" in tampered:  # a minute inside the kept windows, three days back
        minute = str(int(time.time() // 60) - 3 * 1440)
        tampered = {"minutes": {**state[key]["minutes"], minute: -5000}}
    state[key].update(tampered)
    path.write_text(json.dumps(state))
    _same_as_full((cluster, _harness(cluster, tmp_path / "kept"), tmp_path), f"{item} {tampered}")
