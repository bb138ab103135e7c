"""What custom SQL may do, judged on PostgreSQL's own parse tree (pglast: libpg_query).

Least privilege is the first defence: drwatch's role should be pg_monitor with SELECT on its
tables, and every query runs in a read-only transaction. But a read-only transaction stops
writes to tables, not what a function does from a SELECT: run a program, read a server file,
signal a session (under the pg_signal_backend grant remediation needs), make a replication slot,
reset statistics. A text scan cannot tell code from quoted text reliably (`"pg_read_file"(...)`,
`E'\\'' || ...`), so the SQL is parsed, and accepted only as:

- one SELECT (a WITH of SELECTs, set operations, subqueries included), no SELECT INTO;
- no locking clause (FOR UPDATE / SHARE), no data-modifying WITH (INSERT, UPDATE, DELETE, MERGE);
- every function called on the allowlist below of functions without side effects (unqualified
  or in pg_catalog: `evil.count()` is another function), or named by the DBA in the query's
  `functions:` as it is called (their own, which they vouch for).

Refused SQL names the function (or the construct) and its line and column. `allow_side_effects:
true` lifts all of it, for a query its author has read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pglast import ast as pg
from pglast import parse_sql
from pglast.parser import ParseError

# Side-effect-free functions a monitoring query uses: aggregates, arithmetic, text, time, JSON,
# and the statistics and size functions of pg_monitor. Anything else is named for the DBA.
ALLOWED_FUNCTIONS = frozenset(
    """
    count sum avg min max array_agg string_agg bool_and bool_or every bit_and bit_or json_agg
    jsonb_agg json_object_agg jsonb_object_agg percentile_cont percentile_disc mode stddev
    stddev_pop stddev_samp variance var_pop var_samp corr covar_pop covar_samp regr_slope
    regr_intercept rank dense_rank row_number percent_rank cume_dist ntile lag lead first_value
    last_value nth_value abs ceil ceiling floor round trunc sign sqrt cbrt power pow exp ln log
    log10 mod div greatest least width_bucket random_normal length char_length octet_length
    bit_length lower upper initcap substr substring left right concat concat_ws replace
    split_part btrim ltrim rtrim trim position strpos reverse repeat lpad rpad format md5 sha256
    encode decode to_hex ascii chr starts_with translate regexp_replace regexp_match
    regexp_matches regexp_split_to_array regexp_count regexp_like quote_ident quote_literal
    quote_nullable string_to_array array_to_string array_length cardinality unnest
    array_position array_positions array_remove array_cat array_append generate_series
    generate_subscripts now clock_timestamp statement_timestamp transaction_timestamp timeofday
    date_trunc date_part extract age to_timestamp to_date to_char to_number make_interval
    make_date make_time make_timestamp make_timestamptz justify_days justify_hours
    justify_interval isfinite date_bin timezone to_json to_jsonb json_build_object
    jsonb_build_object json_build_array jsonb_build_array json_extract_path
    json_extract_path_text jsonb_extract_path jsonb_extract_path_text jsonb_array_length
    json_array_length jsonb_typeof json_typeof jsonb_each jsonb_each_text json_each
    json_each_text jsonb_object_keys json_object_keys jsonb_array_elements json_array_elements
    jsonb_path_query jsonb_path_exists row_to_json coalesce nullif num_nonnulls num_nulls
    pg_database_size pg_relation_size pg_total_relation_size pg_table_size pg_indexes_size
    pg_size_bytes pg_size_pretty pg_column_size pg_tablespace_size pg_current_wal_lsn
    pg_current_wal_insert_lsn pg_current_wal_flush_lsn pg_wal_lsn_diff pg_walfile_name
    pg_walfile_name_offset pg_last_wal_receive_lsn pg_last_wal_replay_lsn
    pg_last_xact_replay_timestamp pg_is_in_recovery pg_is_wal_replay_paused
    pg_postmaster_start_time pg_conf_load_time pg_backend_pid pg_blocking_pids
    pg_xact_commit_timestamp pg_current_xact_id_if_assigned pg_snapshot_xmin pg_current_snapshot
    txid_current_if_assigned txid_snapshot_xmin txid_current_snapshot age mxid_age
    current_setting current_database current_schema current_user session_user version
    inet_server_addr inet_server_port has_table_privilege has_schema_privilege pg_has_role
    pg_get_userbyid pg_get_indexdef pg_get_constraintdef pg_get_expr pg_stat_get_numscans
    pg_stat_get_live_tuples pg_stat_get_dead_tuples pg_stat_get_last_autovacuum_time
    pg_stat_get_last_autoanalyze_time pg_stat_get_activity pg_stat_get_backend_pid
    pg_stat_get_wal_receiver pg_stat_get_archiver pg_ls_waldir pg_ls_archive_statusdir
    pg_control_checkpoint pg_control_system pg_control_recovery pg_control_init pg_sleep
    """.split()  # noqa: SIM905 - a list of names reads best as words
)

_MODIFYING = (pg.InsertStmt, pg.UpdateStmt, pg.DeleteStmt, pg.MergeStmt)


def _where(sql: str, location: int | None) -> str:
    """`line L, column C` of a parse tree location (a character offset)."""
    if location is None or location < 0:
        return "somewhere"
    before = sql[:location]
    return f"line {before.count(chr(10)) + 1}, column {location - (before.rfind(chr(10)) + 1) + 1}"


def _nodes(node: Any) -> Iterator[pg.Node]:
    """Every node of the tree under `node`, itself included."""
    if isinstance(node, pg.Node):
        yield node
        for name in node:
            yield from _nodes(getattr(node, name))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _nodes(item)


def _allowed(parts: list[str], vouched: set[str]) -> bool:
    """A built-in on the allowlist called as itself (unqualified, which resolves in
    pg_catalog first, or pg_catalog.name), or a function the DBA named, as they named it:
    `evil.count()` is not count()."""
    name = ".".join(parts).lower()
    schema = parts[0].lower() if len(parts) > 1 else None
    builtin = parts[-1].lower() in ALLOWED_FUNCTIONS and schema in (None, "pg_catalog")
    return builtin or name in vouched


def side_effects(sql: str, functions: frozenset[str] = frozenset()) -> list[str]:
    """What in `sql` goes beyond one side-effect-free SELECT, named with where it is; empty
    when nothing does. `functions`: more function names the DBA vouches for."""
    try:
        statements = parse_sql(sql)
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
        why = str(exc.args[0]).partition(", at index")[0]
        return [f"SQL PostgreSQL cannot parse ({why}, {_where(sql, location)})"]
    if len(statements) != 1:
        return [f"{len(statements)} statements (one SELECT is a metric)"]
    statement = statements[0].stmt
    if not isinstance(statement, pg.SelectStmt):
        return [f"{type(statement).__name__.removesuffix('Stmt').upper()} (only a SELECT)"]
    found: list[str] = []
    vouched = {f.lower() for f in functions}
    for node in _nodes(statement):
        if isinstance(node, pg.FuncCall):
            parts = [str(p.sval) for p in node.funcname or () if isinstance(p, pg.String)]
            if not _allowed(parts, vouched):
                found.append(f"{'.'.join(parts)}() ({_where(sql, node.location)})")
        elif isinstance(node, _MODIFYING):
            kind = type(node).__name__.removesuffix("Stmt").upper()
            found.append(f"a data-modifying WITH ({kind})")
        elif isinstance(node, pg.LockingClause):
            found.append("a locking clause (FOR UPDATE/SHARE)")
        elif isinstance(node, pg.SelectStmt) and node.intoClause is not None:
            found.append("SELECT INTO")
    return list(dict.fromkeys(found))
