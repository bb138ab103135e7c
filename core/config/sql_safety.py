"""What custom SQL may not do: a read-only transaction stops writes to tables, but not what a
superuser can do from a SELECT (run a program with COPY ... PROGRAM, read or write server
files, open connections elsewhere, signal other sessions). Such SQL is refused unless its
config says `allow_side_effects: true`."""

from __future__ import annotations

import re

# Statements that are not a query, and functions with effects outside the transaction.
_STATEMENTS = ("copy", "do", "call", "set", "reset", "load", "listen", "notify", "lock")
_FUNCTIONS = (
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "pg_file_write",
    "pg_file_rename",
    "pg_file_unlink",
    "lo_import",
    "lo_export",
    "lo_from_bytea",
    "lo_put",
    "dblink",
    "dblink_exec",
    "dblink_connect",
    "dblink_send_query",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "set_config",
    "pg_advisory_lock",
    "pg_notify",
)
# Comments and quoted text are not code: they are blanked before looking.
_NOT_CODE = re.compile(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\$.*?\$\$", re.S)
_FUNCTION = re.compile(r"\b(" + "|".join(_FUNCTIONS) + r")\s*\(")


def side_effects(sql: str) -> list[str]:
    """What in `sql` reaches outside a read-only query, by name; empty when nothing does."""
    code = _NOT_CODE.sub(" ", sql).lower()
    found = [f"{name}()" for name in dict.fromkeys(_FUNCTION.findall(code))]
    statements = [s.strip() for s in code.split(";") if s.strip()]
    if len(statements) > 1:
        found.append("more than one statement")
    for statement in statements:
        first = statement.split(None, 1)[0]
        if first in _STATEMENTS:
            found.append(first.upper())
    return found
