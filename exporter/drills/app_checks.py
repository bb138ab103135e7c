"""What breaks an application after a restore, though every row came back: a sequence behind
the column it feeds (the first insert after failover fails with a duplicate key); roles that
production's objects and grants name, and extensions production has, missing on the copy's
server (objects restore owned by someone else, grants are lost, an extension's functions are
gone: restore the roles first with `pg_dumpall --roles-only`, install the extensions' packages).

Findings are WARNINGs in the drill's record and summary (the drill still passes), or fail it
with `drills.app_checks: required`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from checks.support.pg import fetch_all, session
from core.config.postgres import PostgresConfig
from core.errors import CheckError
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
    bounded = f"-c statement_timeout={limit_ms}"
    with psycopg.connect(copy, connect_timeout=10, options=bounded) as conn:
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


# Roles production's objects need: their owners and the grantees of their privileges (PUBLIC,
# grantee 0, is no role), in the schemas the application uses; not the bootstrap superuser (oid
# 10), whose objects any server's own superuser owns after a restore.
_ROLES_NEEDED = """
WITH objects AS (
    SELECT c.relowner AS owner, c.relacl AS acl FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%%'
    UNION ALL
    SELECT nspowner, nspacl FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%%'
), roles AS (
    SELECT owner AS role FROM objects
    UNION SELECT (aclexplode(acl)).grantee FROM objects WHERE acl IS NOT NULL
)
SELECT DISTINCT r.rolname AS name FROM roles JOIN pg_roles r ON r.oid = roles.role
WHERE r.oid <> 10 AND r.rolname NOT LIKE 'pg\\_%%' ORDER BY 1 LIMIT %s
"""
_EXTENSIONS = "SELECT extname AS name FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1"
MAX_NAMES = 500


def missing_on_copy(production: PostgresConfig, copy: str, timer: Timer) -> list[str]:
    """Roles production's objects and grants need, and extensions production has, that the
    copy's server lacks, each finding naming them and what to do."""
    limit = max(1.0, timer.remaining())
    try:
        with session(production, statement_timeout=limit) as conn:
            roles = [r["name"] for r in fetch_all(conn, _ROLES_NEEDED, [MAX_NAMES], what="roles")]
            extensions = [r["name"] for r in fetch_all(conn, _EXTENSIONS, what="extensions")]
    except CheckError as exc:  # production is not the copy: the drill goes on without it
        return [f"roles and extensions not compared: production said {exc}"]
    bounded = f"-c statement_timeout={int(limit * 1000)}"
    with psycopg.connect(copy, connect_timeout=10, options=bounded) as conn:
        conn.read_only = True
        have_roles = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
        have_extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        installable = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
    findings = []
    if lacking := [r for r in roles if r not in have_roles]:
        findings.append(
            f"role(s) {', '.join(lacking)} that production's objects and grants need are not on "
            "the copy's server: ownership and grants are lost (restore roles first: pg_dumpall "
            "--roles-only)"
        )
    if lacking := [e for e in extensions if e not in have_extensions]:
        absent = [e for e in lacking if e not in installable]
        where = f"; {', '.join(absent)} cannot be installed on its server (install the package)"
        findings.append(
            f"extension(s) {', '.join(lacking)} production has are not in the copy"
            + (where if absent else "")
        )
    timer.result.values["roles_checked"] = len(roles)
    timer.result.values["extensions_checked"] = len(extensions)
    return findings
