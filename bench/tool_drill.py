"""A pitr drill through the backup tool's own restore, against the same restore done by hand,
and what pg_amcheck costs on the copy.

    .venv/bin/python bench/tool_drill.py [--rows 8000000]

A PostgreSQL cluster archives with pgBackRest (a local repository, as tests/backup_tools.py sets
it up); `debates` is seeded with N rows (8,000,000 make a cluster of about 1 GB), a full backup
is taken, rows are written after it and archived. Then, on the same backup:
1. by hand, as the runbook would: `pgbackrest restore --set=<label> --type=none
   --archive-mode=off` into a fresh directory, `recovery.signal` and `restore_command =
   'pgbackrest ... archive-get %f "%p"'`, the server started and waited for until promoted,
   stopped; then on that copy `pg_amcheck --all` with and without `--heapallindexed`;
2. drwatch's pitr drill of the same repository (its sandbox, its checks), every phase timed.
Prints both restore times, the drill's phases and the amcheck times with the copy's size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill import seed  # bench/drill.py's debates, as a restore by hand there sees them

from exporter.drills import pitr
from sandbox.pgcluster import PgCluster, bindir, free_port, wait_until
from tests.backup_tools import STANZA, PgBackRest
from tests.helpers import make_config


def by_hand(cluster: PgCluster, tool: PgBackRest, into: Path) -> tuple[float, dict[str, float]]:
    """The restore as a person runs it; then amcheck's cost on that copy."""
    data = into / "data"
    cluster.make_server_dir(into)
    cluster.make_server_dir(data)
    data.chmod(0o700)
    started = time.monotonic()
    tool.run(f"--pg1-path={data}", "--type=none", "--archive-mode=off", "restore")
    (data / "recovery.signal").write_text("")
    port = free_port()
    archive_get = (f"pgbackrest --config={tool.conf} --stanza={STANZA} --pg1-path={data} "
                   "archive-get %f \"%p\"")  # fmt: skip
    with open(data / "postgresql.auto.conf", "a") as conf:
        conf.write(f"port = {port}\nunix_socket_directories = '{into}'\narchive_mode = off\n"
                   f"restore_command = '{archive_get}'\nrecovery_target_action = 'promote'\n")  # fmt: skip
    subprocess.run(["chown", "-R", "postgres", str(data)], check=True)
    pg_ctl = str(bindir() / "pg_ctl")
    try:
        cluster.run_as_server_user(pg_ctl, "-D", str(data), "-l", str(into / "log"), "-w",
                                   "start", timeout=3600)  # fmt: skip
    except subprocess.CalledProcessError:
        listing = sorted(p.name for p in data.iterdir())
        sys.exit(f"the copy did not start: {(into / 'log').read_text()[-3000:]} {listing}")
    psql = [str(bindir() / "psql"), "-h", str(into), "-p", str(port), "-U", "postgres", "-Atc"]
    wait_until(
        lambda: cluster.run_as_server_user(*psql, "SELECT pg_is_in_recovery()").strip() == "f",
        3600, interval=0.2, what="the copy promoted",
    )  # fmt: skip
    restored = time.monotonic() - started
    amcheck = {}
    for name, extra in (("basic", []), ("heapallindexed", ["--heapallindexed"])):
        began = time.monotonic()
        cluster.run_as_server_user(
            str(bindir() / "pg_amcheck"), "-h", str(into), "-p", str(port), "-U", "postgres",
            "--install-missing", "--all", *extra, timeout=3600,
        )  # fmt: skip
        amcheck[name] = time.monotonic() - began
    size = int(cluster.run_as_server_user(*psql, "SELECT pg_database_size('app')").strip())
    amcheck["size_bytes"] = size
    cluster.run_as_server_user(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
    return restored, amcheck


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=8_000_000)
    args = parser.parse_args()
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    cluster.init(tool.archive_command).start()
    work = Path(tempfile.mkdtemp(prefix="drwatch-bench-"))
    work.chmod(0o755)
    try:
        tool.run("stanza-create")
        seed(cluster, args.rows)
        tool.run("backup", "--type=full")
        cluster.execute("INSERT INTO debates (title, created_at) SELECT 'after', now() "
                        "FROM generate_series(1, 1000)", "app")  # fmt: skip
        cluster.execute("SELECT pg_switch_wal()")
        wait_until(cluster.archive_caught_up, 120, what="WAL archived")
        hand, amcheck = by_hand(cluster, tool, work / "by-hand")
        scratch = work / "scratch"
        scratch.mkdir(mode=0o755)
        loaded = make_config([{
            "name": "app",
            "postgres": {"dsn": cluster.dsn("app")},
            "backups": {"store": f"file://{work}/dumps/", "wal_store": f"file://{tool.archive}/"},
            "drills": {"schedule": "0 3 * * 0", "timeout": "2h", "amcheck": "basic",
                       "scratch": {"user": "postgres", "dir": str(scratch)},
                       "pitr": {"pgbackrest": {"config": str(tool.conf), "stanza": STANZA}}},
        }], state_dir=str(work / "state"))  # fmt: skip
        config = loaded.config
        result = pitr.run(config, config.targets[0], time.monotonic() + 7200)
        assert result.ok, result.summary
        restore = result.phases["restore"]
        print(f"{args.rows:,} debates, database {amcheck['size_bytes'] / 1e9:.2f} GB")
        print(f"by hand: pgbackrest restore, recovery with archive-get, promoted: {hand:.2f} s")
        print("drill: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.phases.items())
              + f"; total (measured RTO) {result.duration_seconds:.2f} s")  # fmt: skip
        print(f"drill's restore phase against by hand: {(restore / hand - 1) * 100:+.1f}%")
        print(f"pg_amcheck --all on the copy: {amcheck['basic']:.2f} s; with --heapallindexed: "
              f"{amcheck['heapallindexed']:.2f} s")  # fmt: skip
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
