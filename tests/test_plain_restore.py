"""A plain SQL dump restored with no client that interprets it: what pg_dump writes restores, a
psql meta-command never runs, and the drill fails naming its line."""

from __future__ import annotations

import gzip
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from exporter.drills import cross_region, full_restore
from exporter.drills.plain_restore import PlainRestore
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DrillError
from exporter.drills.sqlscan import Scanner, lines
from sandbox.pgcluster import PgCluster, bindir
from tests.helpers import make_config, reachable


def _restore(db: PgCluster, text: bytes) -> None:
    timer = Timer(DrillResult("t", "full_restore", time.time()), time.monotonic() + 60)
    with psycopg.connect(db.dsn("verify")) as conn:
        PlainRestore(conn, timer, "verify").restore(lines([text], 1 << 20))


def test_owners_and_grants_are_left_out_but_never_a_row_of_data(db: PgCluster) -> None:
    dump = (
        b"CREATE TABLE public.t (x text);\n"
        b"ALTER TABLE public.t OWNER TO app_owner;\n"
        b"COPY public.t (x) FROM stdin;\n"
        b"GRANT ALL ON everything\n"  # rows of data that read like statements
        b"ALTER TABLE x OWNER TO y\n"
        b"\\! not a command in COPY data\n"
        b"\\.\n"
        b"GRANT SELECT ON TABLE public.t TO reporting;\n"
        b"CREATE FUNCTION public.f() RETURNS text LANGUAGE plpgsql AS $$ BEGIN\n"
        b"GRANT ALL ON TABLE nothing TO nobody; RETURN 'a;b\\c';\n"  # a body line, kept
        b"END $$;\n"
    )
    _restore(db, dump)
    rows = db.execute("SELECT x FROM t ORDER BY x", "verify")
    # COPY's text format reads `\!` as `!`: a row, never a command
    assert rows == [("! not a command in COPY data",), ("ALTER TABLE x OWNER TO y",),
                    ("GRANT ALL ON everything",)]  # fmt: skip
    body = db.execute("SELECT prosrc FROM pg_proc WHERE proname = 'f'", "verify")[0][0]
    assert "GRANT ALL ON TABLE nothing TO nobody;" in body


def test_copy_data_ends_where_psql_ends_it(db: PgCluster) -> None:
    """`\\.` with a carriage return ends COPY data for psql: after it, lines are SQL again, and
    a meta-command there is refused, not streamed as data."""
    _restore(db, b"CREATE TABLE t (x text);\nCOPY t (x) FROM stdin;\r\none\r\n\\.\r\nSELECT 1;\n")
    assert db.execute("SELECT x FROM t", "verify") == [("one",)]  # COPY reads \r\n lines
    with pytest.raises(DrillError, match=r"line 4: .*meta-command '\\\\! id'"):
        _restore(db, b"CREATE TABLE u (x text);\nCOPY u (x) FROM stdin;\n\\.\r\n\\! id\n")


@pytest.mark.parametrize(
    "line",
    [
        b"\\! touch {marker}",
        b"\\o |touch {marker}",
        b"SELECT 1 \\g |touch {marker}",
        b"\\copy (SELECT 1) TO PROGRAM 'touch {marker}'",
        b"\\i /etc/shadow",
        b"\\c - drwatch_drill",
        b"\\connect other_database",
        b"\\set ON_ERROR_STOP 0",
        b"COPY t (x) FROM stdin; \\! touch {marker}",
        b"SELECT $q$ x $q$; \\! touch {marker}",
    ],
)
def test_every_meta_command_but_pg_dumps_own_is_refused_by_line(
    db: PgCluster, tmp_path: Path, line: bytes
) -> None:
    marker = tmp_path / "ran"
    dump = b"CREATE TABLE t (x text);\nSELECT 'a\\b';\n" + line.replace(
        b"{marker}", str(marker).encode()
    ) + b"\n"  # fmt: skip
    with pytest.raises(DrillError, match=r"^line 3: the dump holds the psql meta-command"):
        _restore(db, dump)
    assert not marker.exists()


def test_what_pg_dump_writes_besides_sql_passes(db: PgCluster) -> None:
    _restore(
        db,
        b"\\restrict abc123\n\\connect verify\nCREATE TABLE t (x int);\n"
        b"\\connect -reuse-previous=on \"dbname='verify'\"\n\\unrestrict abc123\n",
    )
    assert db.execute("SELECT count(*) FROM t", "verify") == [(0,)]


def test_lines_are_bounded_outside_copy_data_and_stream_inside() -> None:
    long_row = b"x" * 5000 + b"\n"
    got = list(lines([b"COPY t FROM stdin;\n", long_row, b"\\.\n"], 1024))
    assert [line.whole for line in got] == [True, False, False, False, False, True, True]
    assert b"".join(line.text for line in got[1:6]) == long_row
    assert max(len(line.text) for line in got) <= 1024


def test_a_line_too_long_for_sql_fails_naming_it(db: PgCluster) -> None:
    timer = Timer(DrillResult("t", "full_restore", time.time()), time.monotonic() + 60)
    with psycopg.connect(db.dsn("verify")) as conn, pytest.raises(DrillError, match=r"^line 2: "):
        PlainRestore(conn, timer).restore(lines([b"SELECT 1;\n", b"-- " + b"y" * 4096], 1024))


def test_the_scanner_follows_quotes_comments_and_dollar_quotes() -> None:
    scanner = Scanner()
    assert scanner.scan(b"SELECT E'it\\'s \\\\', \"a\\\"; /* \\ /* nested */ \\ */ $f$ \\ $f$;\n") is None
    assert scanner.at_boundary
    assert scanner.scan(b"SELECT $body$\n") is None and not scanner.at_boundary
    assert scanner.scan(b"\\! still inside the dollar quote\n") is None
    assert scanner.scan(b"$body$, foo$bar; -- \\ in a comment\n") is None and scanner.at_boundary
    assert scanner.scan(b"CREATE RULE r AS ON INSERT TO t DO (SELECT 1; SELECT 2);\n") is None
    assert scanner.at_boundary
    assert scanner.scan(b"SELECT 1 \\gexec\n") == 9


@pytest.fixture
def attacker(tmp_path: Path) -> Iterator[tuple[PgCluster, Path]]:
    """A server whose dump an attacker edits, and a place the scratch server's user could
    write if anything ran."""
    cluster = PgCluster().init(None).start()
    drop = tmp_path / "drop"
    drop.mkdir()
    drop.chmod(0o777)
    tmp_path.chmod(0o755)
    try:
        cluster.execute("CREATE DATABASE app")
        cluster.execute(
            "CREATE TABLE debates (id int PRIMARY KEY, title text, created_at timestamptz); "
            "INSERT INTO debates SELECT i, 'x', now() - interval '1 day' "
            "FROM generate_series(1, 5) i",
            "app",
        )
        yield cluster, drop
    finally:
        cluster.destroy()


@pytest.mark.parametrize("store_kind", ["primary", "replica"])
def test_a_hostile_plain_dump_runs_nothing_and_reads_nothing(
    attacker: tuple[PgCluster, Path], tmp_path: Path, store_kind: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """pg_dump's output with what an attacker adds after its \\restrict line is gone: shell
    commands, output piped to a program, a file read into the summary, a login as the scratch
    superuser, COPY TO PROGRAM. None of it happens, the drill fails naming the line, and
    drwatch's secrets stay where they are: from the primary store and, in the cross-region
    drill, from the replica."""
    cluster, drop = attacker
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:TOPSECRET@db.internal/app")
    dumped = subprocess.run(
        [str(bindir() / "pg_dump"), "-d", cluster.dsn("app")], capture_output=True, check=True
    ).stdout
    payload = (
        f"\\! env > {drop}/env; cat /proc/{os.getpid()}/environ > {drop}/environ\n"
        f"\\o |tee {drop}/o\n\\i /etc/shadow\n\\c - drwatch_drill\n"
        f"COPY (SELECT 1) TO PROGRAM 'touch {drop}/copy';\n"
    ).encode()
    body = b"\n".join(line for line in dumped.split(b"\n") if not line.startswith(b"\\restrict"))
    hostile = body.replace(b"SET statement_timeout = 0;", b"SET statement_timeout = 0;\n" + payload)
    assert payload in hostile
    store = tmp_path / "store"
    store.mkdir()
    (store / "app-1.sql.gz").write_bytes(gzip.compress(hostile))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reachable(scratch)
    backups: dict[str, object] = {"store": f"file://{store}/", "patterns": ["*.sql.gz"]}
    drills: dict[str, object] = {"scratch": {"user": "postgres", "dir": str(scratch)},
                                 "full_restore": {}}  # fmt: skip
    if store_kind == "replica":  # the cross-region drill restores the dump's copy
        replica = tmp_path / "replica"
        replica.mkdir()
        (replica / "app-1.sql.gz").write_bytes((store / "app-1.sql.gz").read_bytes())
        backups.update(replica_store=f"file://{replica}/", verify="none")
        drills = {**drills, "cross_region": {}}
        del drills["full_restore"]
    target = {"name": "app", "postgres": {"dsn": cluster.dsn("app")}, "backups": backups,
              "drills": drills}  # fmt: skip
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    drill = cross_region.run if store_kind == "replica" else full_restore.run
    result = drill(config, config.targets[0], time.monotonic() + 120)
    assert not result.ok
    line = hostile.split(b"\n").index(payload.split(b"\n")[0]) + 1
    assert result.summary.startswith(f"line {line}: the dump holds the psql meta-command"), (
        result.summary
    )
    assert list(drop.iterdir()) == [], "something in the dump ran"
    assert "root:" not in result.summary and "TOPSECRET" not in result.summary
