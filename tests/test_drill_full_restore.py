"""The full_restore drill: the newest dump restored into a throwaway cluster and checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config.loading import LoadedConfig
from exporter.drills import full_restore
from exporter.drills.engine import DrillEngine
from exporter.drills.metrics import DrillCollector
from exporter.drills.result import DrillResult
from exporter.drills.scratch import MARKER
from sandbox.pgcluster import PgCluster, bindir, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import (
    AWS,
    drwatch,
    make_config,
    reachable,
    running,
    s3_client,
    scratch_postmaster,
)

VERIFICATION = {
    "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}],
    "orphans": [
        {"table": "debate_messages", "column": "debate_id", "parent_table": "debates",
         "parent_column": "id"}
    ],
}  # fmt: skip


def _doc(production: PgCluster, store: Path, state: Path, **drills: object) -> dict[str, Any]:
    scratch = state / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    reachable(scratch)  # the scratch cluster's OS user must reach it
    target = {
        "name": "app",
        "postgres": {"dsn": production.dsn("app"), "verification": VERIFICATION},
        "backups": {"store": f"file://{store}/"},
        "drills": {
            "schedule": "0 3 * * 0",
            "scratch": {"user": "postgres", "dir": str(scratch)},
            "full_restore": {"jobs": 2},
            **drills,
        },
    }
    return {"targets": [target], "state_dir": str(state)}


def _loaded(production: PgCluster, store: Path, state: Path, **drills: object) -> LoadedConfig:
    doc = _doc(production, store, state, **drills)
    return make_config(doc["targets"], state_dir=doc["state_dir"])


def _drill(loaded: LoadedConfig, deadline: float = 120.0) -> DrillResult:
    config = loaded.config
    return full_restore.run(config, config.targets[0], time.monotonic() + deadline)


def test_the_newest_dump_restores_with_every_row(production: PgCluster, tmp_path: Path) -> None:
    store = production.backups / tmp_path.name  # pg_dump runs as the server's OS user
    production.dump("app", store)
    result = _drill(_loaded(production, store, tmp_path / "state"))
    assert result.ok, result.summary
    assert set(result.phases) == {"download", "restore", "verify"}
    assert result.duration_seconds >= sum(result.phases.values())
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == production.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert result.values["amcheck"] == "ok"
    assert result.recovered_to is not None
    assert not list((tmp_path / "state" / "scratch").glob(f"{MARKER}-*")), "scratch left behind"


def test_a_corrupt_dump_fails_with_the_reason(production: PgCluster, tmp_path: Path) -> None:
    store = production.backups / tmp_path.name
    dump = production.dump("app", store)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    result = _drill(_loaded(production, store, tmp_path / "state"))
    assert not result.ok
    assert "pg_restore failed" in result.summary or "does not read" in result.summary


def test_a_copy_that_lacks_rows_fails_naming_the_table(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name  # pg_dump runs as the server's OS user
    production.dump("app", store)
    # Rows committed before the dump's newest row, yet not in the dump: lost data.
    production.execute(
        "INSERT INTO debates (title, created_at) SELECT 'late', now() - interval '3 days' "
        "FROM generate_series(1, 7)",
        "app",
    )
    try:
        result = _drill(_loaded(production, store, tmp_path / "state"))
    finally:
        production.execute("DELETE FROM debates WHERE title = 'late'", "app")
    assert not result.ok
    assert "debates: 7 rows production has up to" in result.summary
    assert result.tables["debates"][1] == 7


def test_a_table_that_came_back_empty_fails_the_drill(
    production: PgCluster, tmp_path: Path
) -> None:
    """A dump taken without a table's data (a pg_dump --exclude-table-data left in a script):
    the copy has no newest row to compare up to; the dump's own time is the measure."""
    store = production.backups / tmp_path.name
    production.dump(
        "app", store, "--exclude-table-data=debates", "--exclude-table-data=debate_messages"
    )
    result = _drill(_loaded(production, store, tmp_path / "state"))
    # Every row but those of the last five minutes (a late commit could explain those).
    older = production.execute(
        "SELECT count(*) FROM debates WHERE created_at <= now() - interval '5 minutes'", "app"
    )[0][0]
    assert not result.ok
    copied, missing = result.tables["debates"]
    assert copied == 0 and older - 5 <= missing <= older + 5, (missing, older)
    assert f"debates: {missing} rows production has up to" in result.summary
    assert "(the copy holds 0)" in result.summary


def test_drwatch_drill_reports_and_the_collector_exports(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    loaded = _loaded(production, store, tmp_path / "state")
    config = tmp_path / "c.yml"
    config.write_text(yaml.safe_dump(_doc(production, store, tmp_path / "state")))
    proc = drwatch("drill", "--config", str(config), "--format", "json", timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    (drill,) = doc["drills"]
    assert doc["status"] == "OK" and drill["scenario"] == "full_restore"
    assert drill["rto_objective_seconds"] == 7200
    assert set(drill["phases"]) == {"download", "restore", "verify"}
    assert drill["values"]["tables"]["debates"]["missing"] == 0
    # A drill run by hand is in the evidence the report is made from.
    report = json.loads(
        drwatch("report", "--config", str(config), "--since", "1d", "--format", "json").stdout
    )
    (scenario,) = report["targets"][0]["scenarios"]
    assert scenario["drills"] == {"run": 1, "passed": 1, "failed": 0, "deferred": 0}

    engine = DrillEngine()
    engine.configure(loaded.config)
    engine.run(loaded.config, loaded.config.targets[0])
    families = {f.name: f for f in DrillCollector(engine, lambda: loaded.config).collect()}
    key = {"target": "app", "scenario": "full_restore"}
    assert [s.value for s in families["drwatch_drill_success"].samples] == [1.0]
    (rto,) = families["drwatch_rto_measured_seconds"].samples
    assert rto.labels == key and rto.value > 0
    phases = {s.labels["phase"] for s in families["drwatch_drill_phase_duration_seconds"].samples}
    assert phases == {"download", "restore", "verify"}
    # The last success survives a restart: a new engine reads it back from state_dir.
    again = DrillEngine()
    again.configure(loaded.config)
    assert again.snapshot()[1][("app", "full_restore")].duration_seconds == rto.value


@pytest.mark.parametrize("isolation", ["bwrap", "user"])
def test_a_drill_killed_midway_is_cleaned_up_at_the_next_start(
    production: PgCluster, tmp_path: Path, isolation: str
) -> None:
    """drwatch SIGKILLed mid-drill: in a sandbox the scratch server dies with it; as another
    OS user (no sandbox) it outlives it, and the next start stops it, proven by its working
    directory's inode, and removes the scratch directories."""
    store = production.backups / tmp_path.name
    production.dump("app", store)
    state = tmp_path / "state"
    config = tmp_path / "c.yml"
    doc = _doc(production, store, state)
    doc["targets"][0]["drills"]["scratch"]["isolation"] = isolation
    config.write_text(yaml.safe_dump(doc))
    scratch = state / "scratch"
    killed = subprocess.Popen(
        [sys.executable, "-m", "exporter", "drill", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        postmaster = wait_until(
            lambda: scratch_postmaster(scratch), 60, interval=0.05, what="the scratch cluster running"
        )
    finally:
        killed.kill()  # SIGKILL: no clean-up of its own
        killed.wait()
    if isolation == "bwrap":
        wait_until(lambda: not running(postmaster), 10, what="dies with drwatch")
    else:
        assert running(postmaster), "the scratch server outlives a killed drwatch"
    daemon = DaemonProcess(config, tmp_path)
    try:
        wait_until(lambda: not list(scratch.glob(f"{MARKER}-*")), 30, what="leftovers removed")
        wait_until(lambda: not running(postmaster), 30, what="server stopped")
        # said once every leftover (the scratch directory, its socket directory) is removed
        wait_until(lambda: "removed a drill left behind" in daemon.log(), 30, what="said")
    finally:
        daemon.stop()


def test_a_drill_past_its_deadline_is_a_failure_and_leaves_nothing(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    loaded = _loaded(production, store, tmp_path / "state", timeout="1s")
    result = _drill(loaded, deadline=0.01)  # a deadline shorter than any restore
    assert not result.ok and result.summary == "timed out after 1 s", result.summary
    assert not list((tmp_path / "state" / "scratch").iterdir()), "scratch left behind"


def test_too_little_space_is_a_clear_failure_not_a_full_disk(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    dump = production.dump("app", store)
    loaded = _loaded(production, store, tmp_path / "state", scratch={"user": "postgres"})
    small = tmp_path / "state" / "drills"
    small.mkdir(parents=True)
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(small)]
    ).returncode:
        pytest.skip("mounting a tmpfs needs root")
    try:
        result = _drill(loaded)
    finally:
        subprocess.run(["umount", "--lazy", str(small)], check=True)
    assert not result.ok
    assert result.summary.startswith(f"not enough space in {small}: ")
    assert "needed (4 x the backup)" in result.summary and dump.stat().st_size * 4 > 64 * 1024


def test_a_staging_server_gets_a_database_of_its_own_dropped_afterwards(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    staging = PgCluster().init(None).start()
    try:
        loaded = _loaded(production, store, tmp_path / "state", scratch={"dsn": staging.dsn()})
        result = _drill(loaded)
        assert result.ok, result.summary
        assert result.tables["debates"][1] == 0
        left = staging.execute("SELECT datname FROM pg_database WHERE datname LIKE 'drwatch%'")
        assert left == [], left
    finally:
        staging.destroy()


def test_a_staging_password_never_reaches_a_command_line(
    production: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pg_restore's arguments are in every local user's `ps` for the whole restore: the staging
    server's password (its superuser's, and the drill role's) goes in the child's environment.
    The real pg_restore runs; the spy only records what it was given."""
    store = production.backups / tmp_path.name
    production.dump("app", store)
    staging = PgCluster().init(None).start()
    started: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(args, **kwargs):  # type: ignore[no-untyped-def]
        started.append((list(args), dict(kwargs.get("env") or {})))
        return real_popen(args, **kwargs)

    monkeypatch.setattr(full_restore.subprocess, "Popen", spy)
    try:
        staging.execute("ALTER ROLE postgres PASSWORD 'staging-s3cret'")
        staging.require_password("all")
        dsn = staging.dsn(password="staging-s3cret")
        result = _drill(_loaded(production, store, tmp_path / "state", scratch={"dsn": dsn}))
        assert result.ok, result.summary
    finally:
        staging.destroy()
    # pg_restore runs in a sandbox: its command line is bwrap's, then its own
    restores = [(a, e) for a, e in started if any(Path(w).name == "pg_restore" for w in a)]
    assert restores and all(Path(a[0]).name == "bwrap" for a, _ in restores)
    for args, _ in restores:
        assert not any("s3cret" in arg or "password=" in arg for arg in args), args
    ((args, env),) = [(a, e) for a, e in restores if "-d" in a]
    assert env.get("PGPASSWORD") and env["PGPASSWORD"] != "staging-s3cret"  # the drill's role
    assert "DATABASE_URL" not in env and set(env) <= {"PATH", "LC_ALL", "TZ", "PGPASSWORD"}


def test_a_staging_name_that_reaches_a_watched_server_is_refused(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    alias = f"postgresql://postgres@127.1:{production.port}/postgres"  # 127.0.0.1 in disguise
    loaded = _loaded(production, store, tmp_path / "state", scratch={"dsn": alias})
    result = _drill(loaded)
    assert not result.ok
    assert "reaches the server of target 'app'" in result.summary
    assert production.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'drwatch%'") == [
        (0,)
    ]


def test_a_dump_in_s3_restores(production: PgCluster, moto_endpoint: str, tmp_path: Path) -> None:
    dump = production.dump("app", production.backups / tmp_path.name)
    bucket = f"drill-{tmp_path.name[-12:].lower().replace('_', '-')}"
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(dump), bucket, f"postgres/{dump.name}")
    doc = _doc(production, dump.parent, tmp_path / "state")
    doc["targets"][0]["backups"]["store"] = f"s3://{bucket}/postgres/"
    loaded = make_config(
        doc["targets"], state_dir=doc["state_dir"], aws={**AWS, "endpoint_url": moto_endpoint}
    )
    result = _drill(loaded)
    assert result.ok, result.summary
    assert result.values["backup"] == dump.name and result.tables["debates"][1] == 0


def _server_binaries(tmp_path: Path, **scripts: str) -> Path:
    """PostgreSQL's own binaries, with the named ones wrapped by shell scripts (`$REAL` is the
    real directory): the one way to meet an older server or a stuck pg_restore on one machine."""
    real = bindir()
    wrapped = tmp_path / "pg_bin"
    wrapped.mkdir()
    for binary in real.iterdir():
        if binary.name in scripts:
            script = wrapped / binary.name
            script.write_text(f"#!/bin/sh\nREAL={real}\n{scripts[binary.name]}\n")
            script.chmod(0o755)
        else:
            (wrapped / binary.name).symlink_to(binary)
    wrapped.chmod(0o755)
    return wrapped


def test_a_scratch_server_older_than_the_dump_is_refused_up_front(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    older = _server_binaries(tmp_path, postgres='echo "postgres (PostgreSQL) 14.9"')
    loaded = _loaded(
        production, store, tmp_path / "state", scratch={"user": "postgres", "pg_bin": str(older)}
    )
    result = _drill(loaded)
    major = int(production.execute("SHOW server_version_num")[0][0]) // 10000
    assert not result.ok
    assert result.summary == (
        f"the dump comes from PostgreSQL {major}; the scratch server is 14 "
        f"(set drills.scratch.pg_bin to PostgreSQL {major} or newer)"
    )
    assert "restore" not in result.phases  # refused before any cluster was made


def test_a_pg_bin_without_a_server_is_named(production: PgCluster, tmp_path: Path) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    loaded = _loaded(
        production, store, tmp_path / "state", scratch={"user": "postgres", "pg_bin": "/usr/bin"}
    )
    result = _drill(loaded)
    assert not result.ok
    assert result.summary == "drills.scratch.pg_bin: no PostgreSQL server binaries in /usr/bin"


def test_the_deadline_kills_pg_restore_and_its_children(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    production.dump("app", store)
    mark = f"{time.time() % 1000:.6f}"  # sleep's argument: how the host finds the child
    stuck = _server_binaries(
        tmp_path,
        # --list (the version check) answers; a restore starts a child and never ends.
        pg_restore=f'[ "$1" = --list ] && exec "$REAL/pg_restore" "$@"\n'
        f"sleep 600.{mark.replace('.', '')} &\nwait",
    )
    loaded = _loaded(
        production, store, tmp_path / "state", scratch={"user": "postgres", "pg_bin": str(stuck)}
    )
    children: list[int] = []
    watcher = threading.Thread(
        target=lambda: children.extend(wait_until(lambda: _running(mark.replace(".", "")), 10)),
        daemon=True,
    )
    watcher.start()
    result = _drill(loaded, deadline=10)
    watcher.join(10)
    assert not result.ok and result.summary.startswith("timed out after"), result.summary
    assert children, "pg_restore's child never ran: the test proves nothing"
    wait_until(lambda: not _running(mark.replace(".", "")), 10, what="pg_restore's child killed")
    assert not list((tmp_path / "state" / "scratch").iterdir()), "scratch left behind"


def _running(argument: str) -> list[int]:
    """The host's pids of processes with `argument` on their command line."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and argument.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def test_a_dump_too_new_for_the_scratch_binaries_says_so(
    production: PgCluster, tmp_path: Path
) -> None:
    store = production.backups / tmp_path.name
    dump = production.dump("app", store)
    newer = bytearray(dump.read_bytes())
    newer[6] = 99  # the archive format's minor version (after "PGDMP" and the major)
    dump.write_bytes(bytes(newer))
    result = _drill(_loaded(production, store, tmp_path / "state"))
    assert not result.ok
    assert result.summary.startswith("the dump was written by a newer pg_dump than ")
    assert "set drills.scratch.pg_bin to the dump's PostgreSQL version or newer" in result.summary


def test_a_hostile_dump_cannot_run_a_program_during_the_restore(tmp_path: Path) -> None:
    """Anyone who can write the backup store can write a dump whose CHECK constraint calls a
    function that runs `COPY ... TO PROGRAM`: restored as a role without pg_execute_server_program,
    the program never runs and the drill fails naming why."""
    attacker = PgCluster().init(None).start()
    drop = tmp_path / "drop"  # where the scratch server's OS user could write, if it ran it
    drop.mkdir()
    drop.chmod(0o777)
    tmp_path.chmod(0o755)
    marker = drop / "pwned"
    try:
        attacker.execute("CREATE DATABASE app")
        attacker.execute(
            "CREATE FUNCTION pwn(id int) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            "IF current_database() <> 'app' THEN "
            f"EXECUTE 'COPY (SELECT 1) TO PROGRAM ''env > {marker}'''; END IF; "
            "RETURN true; END $$; "
            "CREATE TABLE debates (id int PRIMARY KEY, title text, created_at timestamptz, "
            "CHECK (pwn(id))); "
            "INSERT INTO debates SELECT i, 'x', now() - interval '1 day' FROM generate_series(1, 5) i",
            "app",
        )
        store = attacker.backups / "hostile"
        attacker.dump("app", store)
        target = {
            "name": "app",
            "postgres": {"dsn": attacker.dsn("app")},
            "backups": {"store": f"file://{store}/"},
            "drills": {
                "schedule": "0 3 * * 0",
                "scratch": {"user": "postgres", "dir": str(tmp_path / "scratch")},
                "full_restore": {},
            },
        }
        (tmp_path / "scratch").mkdir()
        reachable(tmp_path / "scratch")
        result = _drill(make_config([target], state_dir=str(tmp_path / "state")))
    finally:
        attacker.destroy()
    assert not marker.exists(), "the dump ran a program on the scratch server"
    assert not result.ok
    assert "pg_restore failed" in result.summary
    assert "pg_execute_server_program" in result.summary


def test_a_disk_that_fills_during_the_restore_is_named(tmp_path: Path) -> None:
    """The dump is small (its rows compress well), the restored copy is not: the disk fills
    mid-restore. The drill says so, with free and needed bytes, not "server closed the
    connection unexpectedly"."""
    source = PgCluster().init(None).start()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reachable(scratch)
    mounted = not subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=80m,mode=0755", "tmpfs", str(scratch)]
    ).returncode
    try:
        if not mounted:
            pytest.skip("mounting a tmpfs needs root")
        source.execute("CREATE DATABASE app")
        source.execute(
            "CREATE TABLE filler AS SELECT i, repeat('x', 1000) AS pad "
            "FROM generate_series(1, 100000) i",
            "app",
        )  # ~100 MB in a table, a few hundred kB in a dump
        store = source.backups / "dumps"
        source.dump("app", store)
        target = {
            "name": "app",
            "postgres": {"dsn": source.dsn("app")},
            "backups": {"store": f"file://{store}/"},
            "drills": {"schedule": "0 3 * * 0", "full_restore": {},
                       "scratch": {"user": "postgres", "dir": str(scratch)}},
        }  # fmt: skip
        result = _drill(make_config([target], state_dir=str(tmp_path / "state")))
        assert not result.ok
        assert result.summary.startswith(f"no space left on {scratch}: "), result.summary
        assert " free, about " in result.summary and " needed" in result.summary
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(scratch)], check=False)
        source.destroy()


def test_a_plain_sql_dump_restores_without_psql(production: PgCluster, tmp_path: Path) -> None:
    """`pg_dump | gzip > app.sql.gz` (with an extension in it, and pg_dump's \\restrict): its
    SQL sent to the server in one transaction as the restoring role, checked like any other
    copy."""
    import gzip

    production.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", "app")
    store = tmp_path / "plain"
    store.mkdir()
    dumped = subprocess.run(
        [str(bindir() / "pg_dump"), "-d", production.dsn("app")], capture_output=True, check=True
    ).stdout
    (store / "app-20261206.sql.gz").write_bytes(gzip.compress(dumped))
    loaded = _loaded(production, store, tmp_path / "state")
    doc = _doc(production, store, tmp_path / "state")
    doc["targets"][0]["backups"]["patterns"] = ["*.sql.gz"]
    loaded = make_config(doc["targets"], state_dir=doc["state_dir"])
    result = _drill(loaded)
    assert result.ok, result.summary
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == production.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert "app-20261206.sql.gz" in result.summary


@pytest.mark.parametrize("setting", ["warn", "required"])
def test_a_sequence_behind_its_column_is_said_or_fails(tmp_path: Path, setting: str) -> None:
    """Every row came back, but `jobs_id_seq` gives 3 next while `jobs.id` holds 100: the
    first insert after failover would fail; and the role `reporting` that production's grant
    names is not on the copy's server. WARNINGs in the passing drill's summary, or a failed
    drill with `drills.app_checks: required`."""
    source = PgCluster().init(None).start()
    try:
        source.execute("CREATE DATABASE app")
        source.execute(
            "CREATE TABLE jobs (id serial PRIMARY KEY, at timestamptz DEFAULT now()); "
            "INSERT INTO jobs DEFAULT VALUES; INSERT INTO jobs DEFAULT VALUES; "
            "INSERT INTO jobs (id) VALUES (100); "  # written with its id: the sequence never knew
            "CREATE ROLE reporting; GRANT SELECT ON jobs TO reporting",
            "app",
        )
        store = source.backups / "dumps"
        source.dump("app", store)
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        reachable(scratch)
        target = {"name": "app", "postgres": {"dsn": source.dsn("app")},
                  "backups": {"store": f"file://{store}/"},
                  "drills": {"full_restore": {}, "app_checks": setting,
                             "scratch": {"user": "postgres", "dir": str(scratch)}}}  # fmt: skip
        result = _drill(make_config([target], state_dir=str(tmp_path / "state")))
    finally:
        source.destroy()
    finding = (
        "sequence public.jobs_id_seq would give 3 next, but public.jobs.id already holds up to "
        "100: inserts would fail"
    )
    role = (
        "role(s) reporting that production's objects and grants need are not on the copy's "
        "server: ownership and grants are lost (restore roles first: pg_dumpall --roles-only)"
    )
    assert finding in result.summary and role in result.summary, result.summary
    assert result.ok is (setting == "warn")
    if setting == "warn":
        assert result.values["warnings"] == [finding, role]
