"""The runbook's schema (debates, debate_messages, knowledge_nodes) with seed data that holds a
deliberate gap and a few orphan messages, so every verification check has something to find."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

SCHEMA = """
CREATE TABLE IF NOT EXISTS debates (
    id bigserial PRIMARY KEY,
    title text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS debates_created_at ON debates (created_at);
CREATE TABLE IF NOT EXISTS debate_messages (
    id bigserial PRIMARY KEY,
    debate_id bigint,            -- no FK constraint: the orphans are what drwatch must find
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS knowledge_nodes (
    id bigserial PRIMARY KEY,
    node_type text,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Seeded:
    debates: int
    gap_hours: float
    orphans: int


def seed(
    conn: psycopg.Connection,  # type: ignore[type-arg]
    debates: int = 3000,
    days: int = 10,
    gap_hours: float = 2.0,
    orphans: int = 3,
) -> Seeded:
    """`debates` rows evenly over the last `days`, minus a `gap_hours` hole 2 days ago."""
    conn.execute(SCHEMA)
    step = days * 86400.0 / debates
    conn.execute(
        """
        INSERT INTO debates (title, created_at)
        SELECT 'debate ' || i, now() - make_interval(secs => %(step)s * i)
        FROM generate_series(0, %(n)s - 1) AS i
        WHERE NOT (make_interval(secs => %(step)s * i)
                   BETWEEN interval '48 hours'
                   AND interval '48 hours' + make_interval(secs => %(gap)s * 3600))
        """,
        {"step": step, "n": debates, "gap": gap_hours},
    )
    conn.execute(
        """
        INSERT INTO debate_messages (debate_id, body, created_at)
        SELECT d.id, 'message', d.created_at FROM debates d, generate_series(1, 3)
        """
    )
    conn.execute(
        """
        INSERT INTO debate_messages (debate_id, body)
        SELECT -i, 'orphan' FROM generate_series(1, %(n)s) AS i
        """,
        {"n": orphans},
    )
    conn.execute(
        """
        INSERT INTO knowledge_nodes (node_type)
        SELECT (ARRAY['claim', 'evidence', 'argument', 'source', 'summary'])[1 + i % 5]
        FROM generate_series(1, 500) AS i
        """
    )
    count = conn.execute("SELECT count(*) FROM debates").fetchone()
    return Seeded(int(count[0]) if count else 0, gap_hours, orphans)
