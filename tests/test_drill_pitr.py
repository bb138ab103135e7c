"""The pitr drill: a real pg_basebackup, a real archive, replayed and promoted in a scratch copy."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from exporter.drills import pitr
from sandbox.pgcluster import PgCluster, wait_until
from sandbox.seed import seed
from tests.backup_tools import PgBackRest
from tests.helpers import AWS, make_config, reachable, s3_client


def _archived(cluster: PgCluster) -> None:
    cluster.execute("SELECT pg_switch_wal()")
    wait_until(
        lambda: cluster.execute(
            "SELECT last_archived_wal >= pg_walfile_name(pg_current_wal_lsn() - 1) "
            "FROM pg_stat_archiver"
        )[0][0],
        90,  # an archive_command that starts a program per segment (barman-cloud), under load
        what="WAL archived",
    )


def _setup(cluster: PgCluster, tmp_path: Path) -> Path:
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=500)
    base = cluster.backups / "base"
    cluster.tar_base_backup(base)
    # Written after the base backup: only WAL replay brings these back.
    cluster.execute(
        "INSERT INTO debates (title, created_at) SELECT 'after', now() FROM generate_series(1, 25)",
        "app",
    )
    _archived(cluster)
    return base


def _scratch(tmp_path: Path) -> Path:
    """Where the copy restores: a directory the scratch server's OS user reaches."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reachable(scratch)
    return scratch


def _run(  # type: ignore[no-untyped-def]
    cluster: PgCluster,
    tmp_path: Path,
    base: Path | None,
    stores: tuple[str, str] | None = None,
    aws: dict[str, str] | None = None,
    isolation: str = "auto",
    heartbeat: bool = False,
    **settings: Any,
):
    """The pitr drill of `base` (and the cluster's archive), from file:// unless `stores` gives
    the base and WAL store URLs; `settings` go into `drills.pitr`; `heartbeat`: the target's
    postgres.heartbeat on, against a pitr RPO of 1 s."""
    scratch = _scratch(tmp_path)
    (tmp_path / "dumps").mkdir()
    base_store, wal_store = stores or (f"file://{base}/", f"file://{cluster.archive}/")
    target = {
        "name": "app",
        "postgres": {
            "dsn": cluster.dsn("app"),
            "verification": {
                "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]
            },
            **({"heartbeat": {}} if heartbeat else {}),
        },
        **({"objectives": {"pitr": {"rpo": "1s"}}} if heartbeat else {}),
        "backups": {"store": f"file://{tmp_path}/dumps/", "wal_store": wal_store},
        "drills": {
            "schedule": "0 3 * * 0",
            "scratch": {"user": "postgres", "dir": str(scratch), "isolation": isolation},
            "pitr": {**({"base_store": base_store} if base else {}), **settings},
        },
    }
    top = {"state_dir": str(tmp_path / "state"), **({"aws": aws} if aws else {})}
    config = make_config([target], **top).config
    assert config.targets[0].drill_scenarios() == ["pitr"]
    return pitr.run(config, config.targets[0], time.monotonic() + 120)


def test_the_archive_replays_onto_the_base_backup(
    cluster: PgCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = _setup(cluster, tmp_path)
    written = time.time()
    result = _run(cluster, tmp_path, base)
    # drwatch's own scratch server is not a least-privilege problem of a monitored one.
    # (The test's production is reached as a superuser: that warning is right.)
    scratch = [
        r for r in caplog.records
        if "connected as a superuser" in r.getMessage() and "drwatch-drill" in str(r.host)
    ]  # fmt: skip
    assert not scratch
    assert result.ok, result.summary
    assert result.recovered_to is not None and result.recovered_to > written - 30
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert set(result.phases) == {"download", "restore", "verify"}
    assert not list((tmp_path / "scratch").iterdir()), "scratch left behind"


def test_a_gap_in_the_archive_stops_recovery_early_and_fails(
    cluster: PgCluster, tmp_path: Path
) -> None:
    base = _setup(cluster, tmp_path)
    # More WAL after the backup, then a segment in the middle lost.
    for _ in range(3):
        cluster.execute(
            "INSERT INTO debates (title, created_at) SELECT 'more', now() "
            "FROM generate_series(1, 10)",
            "app",
        )
        _archived(cluster)
    segments = sorted(p for p in cluster.archive.iterdir() if len(p.name) == 24)
    segments[-2].unlink()
    result = _run(cluster, tmp_path, base)
    assert not result.ok
    # Replay ends in the segment before the missing one (named on the new timeline after the
    # promotion); the missing one and the one after it are lost.
    stopped = result.values["replayed_to_segment"]
    assert stopped[8:] == segments[-3].name[8:], (stopped, segments[-3].name)
    assert f"but the archive holds WAL up to {segments[-1].name}" in result.summary
    # Named as the archive holds it, not on the copy's new timeline (a file it never held).
    assert f"recovery stopped at {segments[-3].name} but" in result.summary
    assert "a gap; 2 segments of WAL after it cannot be replayed" in result.summary


def _audit_table(cluster: PgCluster) -> None:
    """A table of a dozen pages in `app` that no verification item reads."""
    cluster.execute("CREATE TABLE audit AS SELECT g AS id, repeat('x', 200) AS note "
                    "FROM generate_series(1, 2000) g; CHECKPOINT", "app")  # fmt: skip


def _garble_block(cluster: PgCluster, table: str, block: int) -> None:
    """Bytes of one page of `table` overwritten on disk, the server stopped meanwhile: what a
    failing disk does, which only a checksum or amcheck finds."""
    relation = cluster.execute(f"SELECT pg_relation_filepath('{table}')", "app")[0][0]
    cluster.stop()
    with open(cluster.datadir / relation, "r+b") as page:
        page.seek(8192 * block + 100)
        page.write(b"garbage" * 4)
    cluster.start()


def test_a_pgbackrest_set_with_a_bad_page_is_passed_over(tmp_path: Path) -> None:
    """pgBackRest found page checksum errors while taking the newest set (`backup-error`): the
    drill restores the newest set that is a recovery point (`--set`), says which it passed over
    and why, and replays the archive onto it."""
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command, checksums=True).start()
    try:
        tool.run("stanza-create")
        cluster.execute("CREATE DATABASE app")
        with cluster.connect("app") as conn:
            seed(conn, debates=300)
        _audit_table(cluster)
        tool.run("backup", "--type=full")
        good = json.loads(tool.run("--output=json", "info"))[0]["backup"][-1]["label"]
        _garble_block(cluster, "audit", 3)
        tool.run("backup", "--type=full")
        newest = json.loads(tool.run("--output=json", "info"))[0]["backup"][-1]
        assert newest["error"] is True, newest  # pgBackRest's own verdict, not the test's
        _archived(cluster)
        config = {"config": str(tool.conf), "stanza": "main"}
        result = _run(
            cluster, tmp_path, None, stores=("", f"file://{tool.archive}/"), pgbackrest=config
        )
    finally:
        cluster.destroy()
    assert result.ok, result.summary
    assert result.values["backup"] == good
    assert f"set {good}, newer set(s) not recovery points: {newest['label']} (backup-error: " in (
        result.summary
    )


def test_a_copy_with_a_corrupt_page_fails_naming_the_relation_and_block(tmp_path: Path) -> None:
    """A page of a table no verification item reads, garbled on production's disk, backed up
    without checksum checks (`pg_basebackup --no-verify-checksums`): the restore, the WAL replay
    and the row counts pass, and pg_amcheck on the promoted copy (amcheck installed by the
    drill) fails the drill naming the table and the block."""
    cluster = PgCluster().init(checksums=True).start()
    try:
        cluster.execute("CREATE DATABASE app")
        with cluster.connect("app") as conn:
            seed(conn, debates=500)
        _audit_table(cluster)
        _garble_block(cluster, "audit", 3)
        base = cluster.backups / "base"
        cluster.tar_base_backup(base, None, "--no-verify-checksums")
        _archived(cluster)
        result = _run(cluster, tmp_path, base)
    finally:
        cluster.destroy()
    assert not result.ok
    assert result.values.get("amcheck") == "failed", result.summary
    assert result.tables["debates"][1] == 0  # every row there: only amcheck sees the page
    assert "pg_amcheck: heap table app.public.audit: invalid page in block 3 of relation " in (
        result.summary
    ), result.summary


def test_a_backup_with_a_tablespace_and_without_wal_restores(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """`-X none` (the WAL from the archive) and a second tablespace (`<oid>.tar`, linked where
    the copy keeps it, never at production's directory): the rows in the tablespace come back,
    and production's tablespace directory is untouched."""
    space = cluster.root / "space"
    cluster.make_server_dir(space)
    cluster.execute(f"CREATE TABLESPACE extra LOCATION '{space}'")
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=200)
    cluster.execute("CREATE TABLE far TABLESPACE extra AS SELECT g FROM generate_series(1, 50) g",
                    "app")  # fmt: skip
    before = sorted(str(p) for p in space.rglob("*"))
    base = cluster.backups / "base"
    cluster.tar_base_backup(base, wal="none")
    cluster.execute("INSERT INTO far SELECT 51", "app")  # only WAL replay brings it back
    _archived(cluster)
    result = _run(cluster, tmp_path, base)
    assert result.ok, result.summary
    assert result.tables["debates"][1] == 0
    assert sorted(str(p) for p in space.rglob("*"))[: len(before)] == before


def test_without_a_physical_base_backup_pitr_is_impossible(
    cluster: PgCluster, tmp_path: Path
) -> None:
    result = _run(cluster, tmp_path, None)
    assert not result.ok and result.summary == pitr.NO_BASE_BACKUP


def test_recovery_stops_at_the_target_time(cluster: PgCluster, tmp_path: Path) -> None:
    base = _setup(cluster, tmp_path)
    before = cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    stop_at = cluster.execute("SELECT clock_timestamp()")[0][0]
    cluster.execute(
        "INSERT INTO debates (title, created_at) SELECT 'too late', now() "
        "FROM generate_series(1, 40)",
        "app",
    )
    _archived(cluster)
    result = _run(cluster, tmp_path, base, target_time=stop_at.isoformat())
    assert result.ok, result.summary  # the WAL after the target is not a gap
    assert result.recovered_to is not None and result.recovered_to <= stop_at.timestamp()
    assert result.tables["debates"][0] == before  # the 40 later rows are not in the copy
    assert result.values["after_target_absent"] == {"debates": True}  # proven, not reported


def test_a_target_time_beyond_the_archive_fails_with_the_servers_reason(
    cluster: PgCluster, tmp_path: Path
) -> None:
    base = _setup(cluster, tmp_path)
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # nothing archived reaches it
    result = _run(cluster, tmp_path, base, target_time=later)
    assert not result.ok
    assert result.summary.startswith("recovery failed: ")
    assert "recovery ended before configured recovery target was reached" in result.summary
    assert not list((tmp_path / "scratch").iterdir()), "scratch left behind"


def test_base_backup_and_archive_in_s3_replay(
    cluster: PgCluster, moto_endpoint: str, tmp_path: Path
) -> None:
    base = _setup(cluster, tmp_path)
    bucket = f"pitr-{tmp_path.name[-12:].lower().replace('_', '-')}"
    s3 = s3_client(moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    for path in base.rglob("*"):
        if path.is_file():
            s3.upload_file(str(path), bucket, f"base/{path.relative_to(base)}")
    for path in cluster.archive.iterdir():
        s3.upload_file(str(path), bucket, f"wal/{path.name}")
    result = _run(
        cluster,
        tmp_path,
        base,
        (f"s3://{bucket}/base/", f"s3://{bucket}/wal/"),
        aws={**AWS, "endpoint_url": moto_endpoint},
    )
    assert result.ok, result.summary
    rows, missing = result.tables["debates"]
    assert missing == 0 and rows == cluster.execute("SELECT count(*) FROM debates", "app")[0][0]


def test_pgbackrest_restores_its_newest_set_and_replays_its_archive(tmp_path: Path) -> None:
    """pgBackRest where configured: its own restore and archive-get, from a real repository
    written by a real archive_command and a real full backup."""
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command).start()
    try:
        tool.run("stanza-create")
        cluster.execute("CREATE DATABASE app")
        with cluster.connect("app") as conn:
            seed(conn, debates=500)
        tool.run("backup", "--type=full")
        cluster.execute(
            "INSERT INTO debates (title, created_at) "
            "SELECT 'after', now() FROM generate_series(1, 25)",
            "app",
        )
        _archived(cluster)
        written = time.time()
        config = {"config": str(tool.conf), "stanza": "main"}
        result = _run(
            cluster, tmp_path, None, stores=("", f"file://{tool.archive}/"), pgbackrest=config
        )
        assert result.ok, result.summary
        assert "pgBackRest stanza main" in result.summary
        assert result.recovered_to is not None and result.recovered_to > written - 30
        rows, missing = result.tables["debates"]
        assert missing == 0 and rows == cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
        after = "SELECT count(*) FROM debates WHERE title = 'after'"
        assert cluster.execute(after, "app") == [(25,)]  # written after the backup: from the WAL
    finally:
        cluster.destroy()


def _repack(archive: Path, into: Path, layout: str) -> None:
    """The archive as a tool writes it by default: WAL-G lz4 under wal_005/, barman-cloud snappy
    under wals/<tl+log>/, barman's local gzip under PostgreSQL's own names."""
    from tests.wal_codecs import COMPRESS

    for path in archive.iterdir():
        data, name = path.read_bytes(), path.name
        if layout == "walg-lz4":
            target = into / "wal_005" / f"{name}.lz4"
            data = COMPRESS["lz4"](data)
        elif layout == "barman-cloud-snappy":
            target = (
                into / "pg" / "wals" / (name[:16] if len(name) == 24 else "") / f"{name}.snappy"
            )
            data = COMPRESS["snappy"](data)
        else:
            target = into / "wals" / (name[:16] if len(name) == 24 else "") / name
            data = COMPRESS["gz"](data)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


@pytest.mark.parametrize("layout", ["walg-lz4", "barman-cloud-snappy", "barman-local-gzip"])
def test_wal_as_the_tools_write_it_by_default_replays(
    cluster: PgCluster, tmp_path: Path, layout: str
) -> None:
    base = _setup(cluster, tmp_path)
    repacked = tmp_path / "repacked"
    _repack(cluster.archive, repacked, layout)
    result = _run(cluster, tmp_path, base, (f"file://{base}/", f"file://{repacked}/"))
    assert result.ok, result.summary
    after = cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    assert result.tables["debates"] == (after, 0)  # the rows after the backup came from the WAL


def test_an_lz4_base_backup_replays(cluster: PgCluster, tmp_path: Path) -> None:
    """pg_basebackup -Z lz4 (base.tar.lz4): unpacked and replayed like an uncompressed one."""
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=100)
    base = cluster.backups / "base-lz4"
    backup = cluster.tar_base_backup(base, "lz4")
    assert (backup / "base.tar.lz4").exists()
    cluster.execute("INSERT INTO debates (title, created_at) SELECT 'after', now()", "app")
    _archived(cluster)
    result = _run(cluster, tmp_path, base)
    assert result.ok, result.summary
    assert result.tables["debates"][1] == 0


@pytest.mark.parametrize("isolation", ["bwrap", "user"])
def test_code_in_a_physical_copy_sees_none_of_drwatchs_secrets(
    cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolation: str
) -> None:
    """A physical base backup is a whole server, its code included: a view the drill reads
    runs the backup's function as the copy's superuser, and that runs a program. It finds
    nothing of drwatch's in its environment; in the sandbox (bwrap) it also sees no process of
    the host, none of drwatch's files and no network but its loopback. What it saw comes back in
    the drill's summary (the function raises it)."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:TOPSECRET-PW@db.internal/app")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "TOPSECRET-KEY")
    secret_file = tmp_path / "drwatch.yml"
    secret_file.write_text("password: TOPSECRET-FILE\n")
    secret_file.chmod(0o644)  # world-readable: only a sandbox keeps it from the copy
    tmp_path.chmod(0o755)
    look = (
        f"(env; echo PROCS; ls /proc; echo FILE; cat {secret_file} 2>&1; echo NET; "
        f"cat /proc/net/dev) | tr '\\n' ' ' > loot"
    )
    cluster.execute("CREATE DATABASE app")
    cluster.execute(
        "CREATE FUNCTION pwn() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
        "IF current_setting('data_directory') LIKE '%drwatch-drill%' THEN "
        f"EXECUTE format('COPY (SELECT 1) TO PROGRAM %L', {_literal(look)}); "
        "RAISE EXCEPTION 'LOOT[%]', pg_read_file('loot'); END IF; "
        "RETURN true; END $$; "
        "CREATE TABLE real_debates (id serial PRIMARY KEY, title text, created_at timestamptz); "
        "INSERT INTO real_debates (title, created_at) SELECT 'x', now() FROM generate_series(1, 3); "
        "CREATE VIEW debates AS SELECT * FROM real_debates WHERE pwn()",
        "app",
    )
    base = cluster.backups / "base"
    cluster.tar_base_backup(base)
    _archived(cluster)
    result = _run(cluster, tmp_path, base, isolation=isolation)
    assert "LOOT[" in result.summary, f"the backup's code did not run: {result.summary}"
    seen = result.summary[result.summary.index("LOOT[") :]
    assert "PATH=" in seen
    assert "TOPSECRET-PW" not in seen and "DATABASE_URL" not in seen and "AWS_" not in seen
    if isolation == "bwrap":
        procs = seen.split("PROCS", 1)[1].split("FILE", 1)[0].split()
        pids = [int(p) for p in procs if p.isdigit()]
        assert pids and max(pids) < 100, procs  # its own few processes, not the host's
        assert str(os.getpid()) not in procs
        assert "TOPSECRET-FILE" not in seen and "No such file" in seen
        interfaces = seen.split("NET", 1)[1]
        assert "lo:" in interfaces and "eth0" not in interfaces and "ens" not in interfaces


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _two_base_backups(cluster: PgCluster, base: Path) -> tuple[int, int]:
    """A second base backup after more rows; (rows at the first, rows at the second)."""
    first = cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    cluster.execute(
        "INSERT INTO debates (title, created_at) SELECT 'second', now() "
        "FROM generate_series(1, 30)",
        "app",
    )
    second_dir = base.parent / "base-2"
    cluster.tar_base_backup(second_dir)
    (second_dir / "backup").rename(base / "backup-2")
    second = cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    _archived(cluster)
    return first, second


def test_the_oldest_point_restores_the_oldest_backup_and_stops_at_once(
    cluster: PgCluster, tmp_path: Path
) -> None:
    base = _setup(cluster, tmp_path)  # backup 1, then 25 rows only WAL holds
    at_first = cluster.execute("SELECT count(*) FROM debates", "app")[0][0] - 25
    _two_base_backups(cluster, base)
    result = _run(cluster, tmp_path, base, point="oldest")
    assert result.ok, result.summary
    assert result.point == "oldest" and result.values["backup"] == "backup"
    assert result.tables["debates"][0] == at_first  # what the oldest backup held, no more
    assert result.recovered_to is not None


def test_rotate_proves_newest_random_and_oldest_in_turn(cluster: PgCluster, tmp_path: Path) -> None:
    """Three drills through the engine (their history gives the turn): the newest point with
    every row, a random point inside the window, the oldest backup."""
    from exporter.drills.engine import DrillEngine

    base = _setup(cluster, tmp_path)
    _, second = _two_base_backups(cluster, base)
    scratch = _scratch(tmp_path)
    (tmp_path / "dumps").mkdir()
    target = {
        "name": "app",
        "postgres": {"dsn": cluster.dsn("app"), "verification": {
            "freshness": [{"table": "debates", "column": "created_at", "max_age": "1h"}]}},
        "backups": {"store": f"file://{tmp_path}/dumps/", "wal_store": f"file://{cluster.archive}/"},
        "drills": {"scratch": {"user": "postgres", "dir": str(scratch)},
                   "pitr": {"base_store": f"file://{base}/", "point": "rotate"}},
    }  # fmt: skip
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    engine = DrillEngine()
    engine.configure(config)
    results = [engine.run(config, config.targets[0])[0] for _ in range(3)]
    assert [r.point for r in results] == ["newest", "random", "oldest"]
    assert all(r.ok for r in results), [r.summary for r in results]
    newest, middle, oldest = results
    assert newest.tables["debates"][0] == second
    # A WAL position after its backup; after the newest backup there may be nothing to replay.
    target = middle.values["point_target"]
    assert "/" in target or (target == "immediate" and middle.values["backup"] == "backup-2")
    assert middle.recovered_to is not None
    assert oldest.values["backup"] == "backup"
    points = [r.point for r in engine.history.read()]  # type: ignore[union-attr]
    assert points == ["newest", "random", "oldest"]  # the record says which point was asked


def test_a_random_point_is_inside_the_window_and_after_its_backup() -> None:
    from random import Random

    from exporter.drills.recovery_point import choose, random_lsn

    taken = [1000.0, 2000.0, 3000.0]
    for seed_value in range(50):
        point = choose("random", taken, 4000.0, Random(seed_value))
        assert point.target_time is not None and 1000.0 <= point.target_time <= 4000.0
        assert taken[point.index] <= point.target_time
        assert point.index == len(taken) - 1 or taken[point.index + 1] > point.target_time
    assert choose("random", taken, None).asked == "newest"  # no archive: nothing to pick in
    assert choose("oldest", taken, 4000.0).settings == {"recovery_target": "'immediate'"}
    lsn = random_lsn(0x3000028, 0x5000000, Random(1))["recovery_target_lsn"]
    assert 0x3000028 <= int(lsn.strip("'").split("/")[1], 16) < 0x5000000
    assert random_lsn(0x5000028, 0x5000000) == {"recovery_target": "'immediate'"}


def test_pitr_from_the_cross_region_copies(cluster: PgCluster, tmp_path: Path) -> None:
    """`from: replica`: the base backups' and the WAL's copies are what is restored; the
    primary stores (empty here) are not read."""
    import shutil

    base = _setup(cluster, tmp_path)
    copies = tmp_path / "other-region"
    shutil.copytree(base, copies / "base")
    shutil.copytree(cluster.archive, copies / "wal")
    empty = tmp_path / "empty"
    empty.mkdir()
    scratch = _scratch(tmp_path)
    target = {
        "name": "app",
        "postgres": {"dsn": cluster.dsn("app")},
        "backups": {"wal_store": f"file://{empty}/", "wal_replica_store": f"file://{copies}/wal/"},
        "drills": {"scratch": {"user": "postgres", "dir": str(scratch)},
                   "pitr": {"base_store": f"file://{empty}/", "from": "replica",
                            "replica_base_store": f"file://{copies}/base/"}},
    }  # fmt: skip
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    result = pitr.run(config, config.targets[0], time.monotonic() + 120)
    assert result.ok, result.summary
    assert result.recovered_to is not None


def test_a_window_start_that_does_not_recover_is_said_by_the_drill_and_the_metrics(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """The base_backups check reports the window from the oldest backup (it verifies only the
    newest); that backup's base.tar is damaged in a data file. The oldest-point drill restores
    exactly that backup, fails naming it as the window's start, and drwatch exports that the
    window's start is unproven beside the window the check reports."""
    from prometheus_client import CollectorRegistry, generate_latest

    from exporter.drills.engine import DrillEngine
    from exporter.drills.metrics import DrillCollector
    from tests.helpers import CheckHarness, sample

    base = _setup(cluster, tmp_path)
    _two_base_backups(cluster, base)
    tar = base / "backup" / "base.tar"
    data = bytearray(tar.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    tar.write_bytes(bytes(data))
    scratch = _scratch(tmp_path)
    target = {
        "name": "app",
        "postgres": {"dsn": cluster.dsn("app")},
        "backups": {"base_store": f"file://{base}/", "wal_store": f"file://{cluster.archive}/",
                    "retention": "1s"},
        "drills": {"scratch": {"user": "postgres", "dir": str(scratch)},
                   "pitr": {"base_store": f"file://{base}/", "point": "oldest"}},
    }  # fmt: skip
    config = make_config([target], state_dir=str(tmp_path / "state")).config
    check = CheckHarness(make_config([target], state_dir=str(tmp_path / "check"))).run(
        "base_backups"
    )
    assert check.values["recovery_window_from"] == "backup", check.summary
    assert sample(check, "drwatch_recovery_window_start_timestamp_seconds") is not None
    engine = DrillEngine()
    engine.configure(config)
    (result,) = engine.run(config, config.targets[0])
    assert not result.ok
    assert result.summary.startswith(
        "the recovery window's start (backup, as base_backups reads it) does not recover: "
    ), result.summary
    assert "checksum mismatch for file" in result.summary  # pg_verifybackup's own words
    registry = CollectorRegistry()
    registry.register(DrillCollector(engine, lambda: config))
    text = generate_latest(registry).decode()
    assert 'drwatch_drill_window_start_recovered{target="app"} 0.0' in text


def _barman_cloud_cluster(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[PgCluster, Any]:
    """A cluster archiving WAL with barman-cloud into a bucket of moto's S3 server, and the
    credentials barman-cloud's commands read in this process's environment."""
    from tests.backup_tools import AWS_ENV, BarmanCloud

    bucket = f"bc-{tmp_path.name.lower().replace('_', '-')[:40]}"
    s3_client(moto_endpoint).create_bucket(Bucket=bucket)
    cluster = PgCluster()
    tool = BarmanCloud(cluster, moto_endpoint, bucket)
    cluster.init(tool.archive_command).start()
    for assignment in AWS_ENV[1:]:
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    return cluster, tool


def test_the_teams_own_restore_command_is_what_the_drill_proves(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WAL archived by barman-cloud into an S3 server; recovery fetches it with the team's own
    `barman-cloud-wal-restore`, as written, with the credentials it is given. A wrong endpoint
    in that command fails the drill naming the tool's error, while drwatch's own reader of the
    same archive still recovers it."""
    cluster, tool = _barman_cloud_cluster(tmp_path, moto_endpoint, monkeypatch)
    try:
        cluster.execute("CREATE DATABASE app")
        with cluster.connect("app") as conn:
            seed(conn, debates=300)
        base = cluster.backups / "base"
        cluster.tar_base_backup(base)
        cluster.execute("INSERT INTO debates (title, created_at) SELECT 'after', now() "
                        "FROM generate_series(1, 25)", "app")  # fmt: skip
        _archived(cluster)
        wal_store = f"{tool.url}/{tool.server}/"
        aws = {**AWS, "endpoint_url": moto_endpoint}
        # The command's credentials, and botocore's own setting for one attempt a call (the
        # wrong endpoint fails at once, not after five tries per WAL file asked for).
        monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
        names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                 "AWS_MAX_ATTEMPTS"]  # fmt: skip

        def drill(name: str, endpoint: str | None):  # type: ignore[no-untyped-def]
            own = {} if endpoint is None else {
                "restore_command": f"barman-cloud-wal-restore --endpoint-url {endpoint} "
                                   f"{tool.url} {tool.server} %f %p",
                "restore_env": names,
            }  # fmt: skip
            (tmp_path / name).mkdir()
            return _run(cluster, tmp_path / name, base, stores=(f"file://{base}/", wal_store),
                        aws=aws, **own)  # fmt: skip

        team = drill("team", moto_endpoint)
        wrong = drill("wrong", "http://127.0.0.1:1")
        ours = drill("own", None)
        rows = cluster.execute("SELECT count(*) FROM debates", "app")[0][0]
    finally:
        cluster.destroy()
    assert team.ok, team.summary
    assert team.values["wal_from"] == "restore_command" and team.tables["debates"] == (rows, 0)
    assert not wrong.ok
    assert ("the restore_command stopped recovery early, though drwatch's own reader finds the "
            "WAL in the archive") in wrong.summary, wrong.summary
    said = wrong.summary.split("; it said: ", 1)[1]
    assert "127.0.0.1:1" in said or "onnect" in said, said  # barman-cloud's own error
    assert ours.ok and ours.values["wal_from"] == "drwatch", ours.summary


def _barman_cloud_estate(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[PgCluster, Any, int]:
    """A cluster archiving with barman-cloud into moto's S3 server, one barman-cloud base
    backup, rows written after it: (the cluster, the tool, rows in debates)."""
    cluster, tool = _barman_cloud_cluster(tmp_path, moto_endpoint, monkeypatch)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return cluster, tool, _backed_up_then_written(cluster, tool)


def _backed_up_then_written(cluster: PgCluster, tool: Any) -> int:
    """`app` seeded, a base backup by the tool, 25 rows written after it and archived: the rows
    debates holds."""
    cluster.execute("CREATE DATABASE app")
    with cluster.connect("app") as conn:
        seed(conn, debates=300)
    tool.backup()
    cluster.execute("INSERT INTO debates (title, created_at) SELECT 'after', now() "
                    "FROM generate_series(1, 25)", "app")  # fmt: skip
    _archived(cluster)
    return int(cluster.execute("SELECT count(*) FROM debates", "app")[0][0])


CREDENTIALS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
               "AWS_MAX_ATTEMPTS"]  # fmt: skip


def test_barman_cloud_backups_restore_by_the_tool_and_by_drwatch(
    tmp_path: Path, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A barman-cloud base backup is a drill source: barman-cloud-restore puts it back and
    barman-cloud-wal-restore fetches the WAL (method tool), or drwatch's own reader unpacks its
    data tar and spools the archive (method drwatch); both recover every row. A setting wrong
    only on the tool's side (a proxy it is given that leads nowhere) fails the tool's drill
    naming barman-cloud's own error, while drwatch's path still passes."""
    cluster, tool, rows = _barman_cloud_estate(tmp_path, moto_endpoint, monkeypatch)
    store = f"{tool.url}/{tool.server}/"
    aws = {**AWS, "endpoint_url": moto_endpoint}
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # drwatch's own calls go straight to moto
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")

    def drill(name: str, method: str, env: list[str]):  # type: ignore[no-untyped-def]
        (tmp_path / name).mkdir()
        return _run(cluster, tmp_path / name, Path("unused"), stores=(store, store), aws=aws,
                    method=method, restore_env=env)  # fmt: skip

    try:
        by_tool = drill("tool", "tool", CREDENTIALS)
        by_drwatch = drill("drwatch", "drwatch", [])
        wrong = drill("wrong", "tool", [*CREDENTIALS, "HTTP_PROXY"])
    finally:
        cluster.destroy()
    assert by_tool.ok, by_tool.summary
    assert by_tool.values["method"] == "tool" and by_tool.values["restored_by"] == "barman-cloud"
    assert by_tool.values["wal_from"] == "tool" and by_tool.tables["debates"] == (rows, 0)
    assert "barman-cloud backup" in by_tool.summary
    assert by_drwatch.ok, by_drwatch.summary
    assert by_drwatch.values["method"] == "drwatch" and by_drwatch.values["wal_from"] == "drwatch"
    assert by_drwatch.tables["debates"] == (rows, 0)
    assert not wrong.ok
    assert "barman-cloud-restore" in wrong.summary and "127.0.0.1:1" in wrong.summary, (
        wrong.summary
    )


def test_the_tools_command_lines_are_the_ones_the_team_would_type() -> None:
    """WAL-G and barman (no WAL-G binary installs here, and barman's recover needs its server's
    host): the command lines built for backup-fetch/wal-fetch and recover/get-wal."""
    from checks.backup_tools import barman, barman_cloud, pgbackrest, walg
    from checks.backup_tools.base import RestoreSource

    where = RestoreSource("s3://bucket/walg", config="/etc/wal-g.yaml")
    assert walg.RESTORE.base(where, "base_000000010000000000000004", "/d")[1:] == [
        "--config=/etc/wal-g.yaml", "backup-fetch", "/d", "base_000000010000000000000004"]
    assert walg.RESTORE.wal(where, "/d").endswith(
        'wal-g --config=/etc/wal-g.yaml wal-fetch "%f" "%p"')
    local = RestoreSource("file:///var/lib/barman", config="/etc/barman.conf", stanza="pg")
    assert barman.RESTORE.base(local, "20240101T010101", "/d")[1:] == [
        "--config=/etc/barman.conf", "recover", "pg", "20240101T010101", "/d"]
    assert barman.RESTORE.wal(local, "/d").endswith(
        'barman --config=/etc/barman.conf get-wal pg %f > "%p"')
    cloud = RestoreSource("s3://bucket/barman/pg/", endpoint_url="http://127.0.0.1:9000")
    assert barman_cloud.RESTORE.base(cloud, "20240101T010101", "/d")[1:] == [
        "--endpoint-url", "http://127.0.0.1:9000", "s3://bucket/barman", "pg", "20240101T010101",
        "/d"]  # fmt: skip
    assert barman_cloud.RESTORE.wal(cloud, "/d").split()[1:] == [
        "--endpoint-url", "http://127.0.0.1:9000", "s3://bucket/barman", "pg", "%f", "%p"]
    rest = RestoreSource("", config="/etc/pgbackrest.conf", stanza="main")
    assert pgbackrest.RESTORE.base(rest, "20240101-010101F", "/d")[-4:] == [
        "--set=20240101-010101F", "--type=none", "--archive-mode=off", "restore"]


def test_barman_recover_restores_and_get_wal_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """barman (from PyPI) beside the cluster: the drill restores its newest backup with `barman
    recover` and replays with `barman get-wal` as the restore_command, the team's restoring
    config given read-only with barman's home; every row comes back. drwatch's own reader does
    not read barman's data directories: method drwatch is refused by name."""
    from tests.backup_tools import BARMAN_VENV, Barman

    cluster = PgCluster()
    tool = Barman(cluster)
    cluster.init(tool.archive_command).start()
    monkeypatch.setenv("PATH", f"{BARMAN_VENV / 'bin'}:{os.environ['PATH']}")
    reachable(BARMAN_VENV)
    try:
        rows = _backed_up_then_written(cluster, tool)
        tool.archive_now()
        store = f"file://{tool.home}/{tool.server}/"
        settings = {"tool_config": str(tool.restore_conf), "barman_server": tool.server,
                    "restore_files": [str(tool.home)]}  # fmt: skip
        (tmp_path / "tool").mkdir()
        by_tool = _run(cluster, tmp_path / "tool", Path("unused"), stores=(store, store),
                       **settings)  # fmt: skip
        (tmp_path / "drwatch").mkdir()
        refused = _run(cluster, tmp_path / "drwatch", Path("unused"), stores=(store, store),
                       method="drwatch", **settings)  # fmt: skip
    finally:
        cluster.destroy()
    assert by_tool.ok, by_tool.summary
    assert (by_tool.values["method"], by_tool.values["restored_by"]) == ("tool", "barman")
    assert by_tool.values["wal_from"] == "tool" and by_tool.tables["debates"] == (rows, 0)
    assert not refused.ok
    assert "drwatch's own reader restores pg_basebackup and barman-cloud base backups, not " \
        "barman's" in refused.summary, refused.summary
