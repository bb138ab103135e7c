"""The scratch cluster a drill restores into: its superuser is drwatch's alone, its files are
written without following what the server's user planted, and its directory stays drwatch's."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import psycopg
import pytest

from exporter.drills.scratch import RESTORER, SUPERUSER, ThrowawayCluster
from exporter.drills.scratchfiles import write_file
from tests.helpers import make_config, reachable


def _cluster(tmp_path: Path) -> ThrowawayCluster:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    reachable(scratch)
    config = make_config([{"name": "x", "backups": {"store": f"file://{tmp_path}/"}, "drills": {
        "scratch": {"user": "postgres", "dir": str(scratch)}, "full_restore": {},
    }}], state_dir=str(tmp_path / "state")).config  # fmt: skip
    drills = config.targets[0].drills
    assert drills is not None
    return ThrowawayCluster(drills, Path(config.state_dir), time.monotonic() + 120)


def test_no_role_logs_in_without_the_password_only_drwatch_holds(tmp_path: Path) -> None:
    """Never `trust`: what a dump runs on the server (dblink, a connection from its code) or
    anyone reaching the socket cannot become the scratch superuser, nor the restoring role."""
    cluster = _cluster(tmp_path)
    try:
        cluster.start()
        cluster.create_database()
        for role in (SUPERUSER, RESTORER):
            with pytest.raises(psycopg.OperationalError, match="password"):
                psycopg.connect(f"host={cluster.socket_dir} user={role} dbname=postgres "
                                "connect_timeout=5").close()  # fmt: skip
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                psycopg.connect(f"host={cluster.socket_dir} user={role} dbname=postgres "
                                "password=guessed connect_timeout=5").close()  # fmt: skip
        with psycopg.connect(cluster.dsn()) as conn:
            hba = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
            assert ("local", "trust") not in hba and ("local", "scram-sha-256") in hba
        socket_dir = cluster.socket_dir.stat()
        assert stat.S_IMODE(socket_dir.st_mode) == 0o700
    finally:
        cluster.close()


def test_the_scratch_directory_stays_drwatchs(tmp_path: Path) -> None:
    """Only `data` is the server's user's: it cannot swap `data` for a link to another
    cluster, which drwatch would then write into or stop."""
    cluster = _cluster(tmp_path)
    try:
        root = cluster.root.stat()
        assert root.st_uid == os.geteuid() and not root.st_mode & 0o022
        assert cluster.data.stat().st_uid != os.geteuid()  # the scratch user's (drwatch is root)
    finally:
        cluster.close()


def test_a_planted_link_is_replaced_never_written_through(tmp_path: Path) -> None:
    """A restore's own user leaves `pg_hba.conf -> /some/file of root's`: drwatch's write lands
    in a new file of its own, the target untouched; an append refuses a link too."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "pg_hba.conf").symlink_to(victim)
    (data / "postgresql.auto.conf").symlink_to(victim)
    write_file(data, "pg_hba.conf", "local all all trust\n")
    write_file(data, "postgresql.auto.conf", "archive_mode = off\n", append=True)
    assert victim.read_text() == "precious\n"
    for name in ("pg_hba.conf", "postgresql.auto.conf"):
        assert (data / name).is_file() and not (data / name).is_symlink()
    assert (data / "pg_hba.conf").read_text() == "local all all trust\n"


def test_a_scratch_cluster_that_cannot_be_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handing the data directory to the server's user fails: the scratch directory and its
    socket directory go with the failure, so the next drill's start finds no leftover to take
    for a killed drwatch's."""
    import tempfile

    from exporter.drills import scratch as scratch_module
    from exporter.drills.leftovers import MARKER

    def refused(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    before = set(Path(tempfile.gettempdir()).glob(f"{MARKER}-{os.getpid()}-*"))
    monkeypatch.setattr(scratch_module, "give", refused)
    with pytest.raises(PermissionError):
        _cluster(tmp_path)
    assert not list((tmp_path / "scratch").iterdir())
    assert set(Path(tempfile.gettempdir()).glob(f"{MARKER}-{os.getpid()}-*")) == before
