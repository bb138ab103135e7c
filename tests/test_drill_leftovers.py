"""Leftovers of killed drills, as a local attacker would plant them: a directory in /tmp or in
the scratch base naming a victim's postmaster, a forged owner marker. drwatch touches only what
it proves it made: its marker, its own working directory in /proc."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from exporter.drills.engine import DrillEngine
from exporter.drills.leftovers import MARKER, OWNER_FILE, instance_id, mark, remove_leftovers
from exporter.drills.staging import staging_prefix
from sandbox.pgcluster import PgCluster, wait_until
from tests.helpers import make_config, reachable, running, scratch_postmaster

NOBODY = pwd.getpwnam("nobody")


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture
def victim() -> Iterator[PgCluster]:
    c = PgCluster().init(None).start()
    try:
        yield c
    finally:
        c.destroy()


def _postmaster(cluster: PgCluster) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def _plant(where: Path, pid: int, owner: int = NOBODY.pw_uid) -> Path:
    planted = where / f"{MARKER}-{_dead_pid()}-planted"
    (planted / "data").mkdir(parents=True)
    (planted / "data" / "postmaster.pid").write_text(f"{pid}\n")
    (planted / "redis.pid").write_text(f"{pid}\n")
    for path in (planted, planted / "data", planted / "data" / "postmaster.pid"):
        os.chown(path, owner, owner)
    return planted


def _config(tmp_path: Path, **scratch: object):  # type: ignore[no-untyped-def]
    target = {
        "name": "app",
        "postgres": {"dsn": "postgresql://x@127.0.0.1:1/app"},
        "backups": {"store": f"file://{tmp_path}/"},
        "drills": {"schedule": "0 3 * * 0", "scratch": {"user": "postgres", **scratch},
                   "full_restore": {}},
    }  # fmt: skip
    return make_config([target], state_dir=str(tmp_path / "state")).config


def test_a_planted_leftover_cannot_name_a_victim(victim: PgCluster, tmp_path: Path) -> None:
    config = _config(tmp_path, dir=str(tmp_path / "scratch"))
    base = tmp_path / "scratch"
    base.mkdir()
    in_tmp = _plant(Path("/tmp"), _postmaster(victim))
    in_base = _plant(base, _postmaster(victim), owner=0)  # even one owned by drwatch's user
    forged = _plant(base, _postmaster(victim), owner=0)
    (forged / OWNER_FILE).write_text("guessed\n")
    (forged / OWNER_FILE).chmod(0o600)
    try:
        DrillEngine().clean_leftovers(config)
        os.kill(_postmaster(victim), 0)  # still alive
        assert victim.execute("SELECT 1") == [(1,)]
        assert in_tmp.exists() and in_base.exists() and forged.exists()  # not ours: left alone
    finally:
        subprocess.run(["rm", "-rf", str(in_tmp)], check=False)


def test_a_leftover_whose_data_leads_to_another_cluster_spares_it(
    victim: PgCluster, tmp_path: Path
) -> None:
    """A leftover drwatch made, its `data` swapped for a link to another cluster's directory (a
    hostile restore's `recovery_end_command` did it): removed without following the link, the
    other cluster never signalled."""
    state = tmp_path / "state"
    base = tmp_path / "scratch"
    base.mkdir()
    ours = base / f"{MARKER}-{_dead_pid()}-base-x"
    ours.mkdir()
    mark(ours, state)
    (ours / "data").symlink_to(victim.datadir)
    assert remove_leftovers(base, state) == [ours] and not ours.exists()
    os.kill(_postmaster(victim), 0)  # still alive
    assert victim.execute("SELECT 1") == [(1,)]
    assert (victim.datadir / "PG_VERSION").exists()


def test_a_leftover_drwatch_made_is_removed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    base = tmp_path / "scratch"
    base.mkdir()
    ours = base / f"{MARKER}-{_dead_pid()}-dump-x"
    ours.mkdir()
    mark(ours, state)
    assert remove_leftovers(base, state) == [ours] and not ours.exists()
    # The id is private: readable by drwatch's user only.
    assert (state / "drill-owner-id").stat().st_mode & 0o077 == 0
    assert instance_id(state) == instance_id(state)


def test_a_base_others_can_write_is_refused(tmp_path: Path) -> None:
    from exporter.drills.leftovers import NotOurs, safe_base

    base = tmp_path / "shared"
    base.mkdir()
    base.chmod(0o777)
    with pytest.raises(NotOurs, match=r"scratch\.dir of their own"):
        safe_base(base)


def test_a_killed_one_shot_drill_is_cleaned_by_the_next_one(tmp_path: Path) -> None:
    """`drwatch drill` SIGKILLed mid-restore leaves a postmaster (running as the scratch user,
    without a sandbox) and its data; the next `drwatch drill` (not only a daemon start) stops and
    removes them."""
    source = PgCluster().init(None).start()
    try:
        source.execute("CREATE DATABASE app")
        source.execute(
            "CREATE TABLE t AS SELECT i, repeat('x', 500) AS pad FROM generate_series(1, 200000) i",
            "app",
        )
        store = source.backups / "dumps"
        source.dump("app", store)
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        reachable(scratch)
        doc = {
            "state_dir": str(tmp_path / "state"),
            "targets": [{
                "name": "app", "postgres": {"dsn": source.dsn("app")},
                "backups": {"store": f"file://{store}/"},
                # Not sandboxed: a sandbox's server dies with the drwatch that started it.
                "drills": {"schedule": "0 3 * * 0", "full_restore": {},
                           "scratch": {"user": "postgres", "dir": str(scratch),
                                       "isolation": "user"}},
            }],
        }  # fmt: skip
        config = tmp_path / "c.yml"
        config.write_text(yaml.safe_dump(doc))
        drill = [sys.executable, "-m", "exporter", "drill", "--config", str(config)]
        killed = subprocess.Popen(drill, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            postmaster = wait_until(
                lambda: scratch_postmaster(scratch), 60, interval=0.05,
                what="the scratch cluster running",
            )  # fmt: skip
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait()
        assert running(postmaster)
        left = list(scratch.glob(f"{MARKER}-*"))  # the download's and the cluster's
        assert left
        again = subprocess.run(drill, capture_output=True, text=True, timeout=180)
        assert again.returncode == 0, again.stdout + again.stderr
        assert not any(path.exists() for path in left)
        wait_until(lambda: not running(postmaster), 30, what="server stopped")
    finally:
        source.destroy()


def test_staging_leftovers_of_this_installation_are_dropped(tmp_path: Path) -> None:
    staging = PgCluster().init(None).start()
    try:
        config = _config(tmp_path, dsn=staging.dsn())
        ours = f"{staging_prefix(config.state_dir)}0123456789ab"
        theirs = "drwatch_drill_00000000_0123456789ab"  # another installation's
        staging.execute(f'CREATE DATABASE "{ours}"')
        staging.execute(f'CREATE DATABASE "{theirs}"')
        DrillEngine().clean_leftovers(config)
        names = {r[0] for r in staging.execute("SELECT datname FROM pg_database")}
        assert ours not in names and theirs in names
    finally:
        staging.destroy()
