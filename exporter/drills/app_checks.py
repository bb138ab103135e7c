"""What breaks an application after a restore, though every row came back: a sequence behind
the column it feeds (the first insert after failover fails with a duplicate key).

Findings are WARNINGs in the drill's record and summary (the drill still passes), or fail it
with `drills.app_checks: required`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from exporter.drills.result import Timer

MAX_SEQUENCES = 1000  # checked per copy: a schema with more is checked this far, and says so

_OWNED = """
SELECT s.oid AS seq, n.nspname AS seq_schema, s.relname AS seq_name,
       tn.nspname AS schema, t.relname AS table_name, a.attname AS column_name
FROM pg_class s
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class t ON t.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2, 3
LIMIT %s
"""


def sequences_behind(copy: str, timer: Timer) -> list[str]:
    """Each sequence owned by a column (serial, identity) whose next value the column already
    holds, named with both numbers."""
    limit_ms = int(max(1.0, timer.remaining()) * 1000)
    findings: list[str] = []
    with psycopg.connect(copy, options=f"-c statement_timeout={limit_ms}") as conn:
        conn.read_only = True
        owned = conn.execute(_OWNED, [MAX_SEQUENCES]).fetchall()
        for _, seq_schema, seq_name, schema, table, column in owned:
            behind = _behind(conn, seq_schema, seq_name, schema, table, column)
            if behind is not None:
                findings.append(behind)
            timer.remaining()
    timer.result.values["sequences_checked"] = len(owned)
    return findings


def _behind(
    conn: psycopg.Connection[Any], seq_schema: str, seq_name: str, schema: str, table: str,
    column: str,
) -> str | None:  # fmt: skip
    state = conn.execute(
        sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(seq_schema, seq_name))
    ).fetchone()
    newest = conn.execute(
        sql.SQL("SELECT max({}) FROM {}").format(
            sql.Identifier(column), sql.Identifier(schema, table)
        )
    ).fetchone()
    if state is None or newest is None or newest[0] is None:
        return None
    last_value, is_called = state
    next_value = last_value + 1 if is_called else last_value
    if not isinstance(newest[0], int) or newest[0] < next_value:
        return None
    return (
        f"sequence {seq_schema}.{seq_name} would give {next_value} next, but "
        f"{schema}.{table}.{column} already holds up to {newest[0]}: inserts would fail"
    )
