"""A fleet from one process, from worker processes and from two shards: CPU, memory and scrape
latency while checks run, and against an idle daemon of the same size.

    .venv/bin/python bench/fleet.py [--targets 500 1000 2000] [--seconds 60] [--workers 0 2]
                                    [--shards 0] [--idle]

For each fleet size N: drwatch as users run it (its own process, under systemd's 1,024-descriptor
limit), N targets on one real PostgreSQL, each with wal_archiving, connections and a light
verification (one freshness item) every 15 s (the other postgres checks off). Once every check has run, for `seconds`: one scrape after another with 100 ms
between them (a few Prometheus servers' worth), latency from connect to last byte; a scrape over
10 s (Prometheus's timeout) or failed counts as lost. CPU (user + system from /proc) of the
daemon and every process under it (the workers) over the same window, in cores; RSS at the end,
the daemon's and the sum over its processes. Once per `--workers` value (0: the checks in the
daemon's process). `--idle`: the same N with an interval of 1 h, measured after the first round,
so the page is the same size and nothing runs: the baseline for the scrape under load. Then
(`--shards S`) the same N targets over S replicas, each measured the same way at once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import descendants

PAUSE = 0.1
LOST_AFTER = 10.0  # Prometheus's default scrape_timeout


def tree(pid: int) -> list[int]:
    """The daemon and every process under it (its workers, multiprocessing's helpers)."""
    return [pid, *(p.pid for p in descendants(pid))]


def helpers(pid: int) -> list[int]:
    """multiprocessing's forkserver and resource tracker: the daemon's own children running
    multiprocessing's code (the workers are the forkserver's children, and share its command
    line: they are forked from it, not executed)."""
    found = []
    for child in descendants(pid):
        try:
            parent = int(Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes()
        except OSError:
            continue
        if parent == pid and b"from multiprocessing." in cmdline:
            found.append(child.pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages (the forkserver's, copy-on-write) counted once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Measured:
    lines: int
    cores: float
    rss_mb: float  # the daemon's own
    rss_workers_mb: float  # the daemon and its workers
    rss_helpers_mb: float  # multiprocessing's forkserver and resource tracker
    pss_total_mb: float  # all of them, shared pages counted once
    p50_ms: float
    p99_ms: float
    scrapes: int
    lost: int  # failed, or over LOST_AFTER


def measure(daemon: DaemonProcess, seconds: float) -> Measured:
    url = f"{daemon.base}/metrics"
    pids = tree(daemon.proc.pid)
    latencies: list[float] = []
    lines = lost = 0
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    while time.monotonic() - t0 < seconds:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=LOST_AFTER) as resp:
                body = resp.read()
            lines = body.count(b"\n")
        except OSError:
            lost += 1
        latencies.append(time.monotonic() - started)
        lost += latencies[-1] > LOST_AFTER
        time.sleep(PAUSE)  # the pace of the scrapers (a benchmark, not a synchronisation)
    cores = (cpu_seconds(pids) - cpu0) / (time.monotonic() - t0)
    everything, aides = tree(daemon.proc.pid), helpers(daemon.proc.pid)
    return Measured(
        lines,
        cores,
        rss_mb(daemon.proc.pid),
        sum(rss_mb(pid) for pid in everything if pid not in aides),
        sum(rss_mb(pid) for pid in aides),
        sum(pss_mb(pid) for pid in everything),
        statistics.median(latencies) * 1000,
        percentile(latencies, 99) * 1000,
        len(latencies),
        lost,
    )


def start(config: Path, work: Path, args: tuple[str, ...] = ()) -> DaemonProcess:
    work.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(config, work, wrapper=("prlimit", "--nofile=1024:1024", "--"), args=args)
    wait_until(lambda: daemon.get("/-/ready", timeout=10)[0] == 200, 600, what="every check ran")
    return daemon


def report(label: str, n: int, m: Measured) -> None:
    print(
        f"{label}: {m.lines} lines, {m.cores:.2f} cores ({m.cores / n * 1000:.2f} per 1,000 "
        f"targets), RSS {m.rss_mb:.0f} MB (with its workers {m.rss_workers_mb:.0f} MB; "
        f"forkserver and resource tracker {m.rss_helpers_mb:.0f} MB; PSS of all "
        f"{m.pss_total_mb:.0f} MB), scrape "
        f"p50 {m.p50_ms:.1f} ms, p99 {m.p99_ms:.1f} ms ({m.scrapes} scrapes, {m.lost} lost)",
        flush=True,
    )


def fleet_config(path: Path, cluster: PgCluster, n: int, interval: str, state: Path) -> Path:
    postgres = {
        "dsn": cluster.dsn(),
        "interval": interval,
        # One server stands in for a fleet's many: its budget is the whole fleet's, where each
        # of a real fleet's servers would have its own (10 by default).
        "max_connections_used": 50,
        # The fleet: WAL archiving, connections and a light verification per target.
        "cluster": {"enabled": False},
        "replication": {"enabled": False},
        "replication_slots": {"enabled": False},
        "verification": {
            "interval": interval,
            "freshness": [{"table": "events", "column": "at", "max_age": "1d"}],
        },
    }
    targets = [{"name": f"db{i}", "postgres": postgres} for i in range(n)]
    path.write_text(yaml.safe_dump({"targets": targets, "state_dir": str(state)}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--shards", type=int, default=0)
    parser.add_argument("--idle", action="store_true")
    args = parser.parse_args()
    cluster = PgCluster().init(None, max_connections="200").start()
    cluster.execute("CREATE TABLE events (at timestamptz NOT NULL DEFAULT now())")
    cluster.execute("INSERT INTO events SELECT now() FROM generate_series(1, 1000)")
    work = Path(tempfile.mkdtemp())
    try:
        for n in args.targets:
            config = fleet_config(work / f"fleet-{n}.yml", cluster, n, "15s", work)
            runs = [(f"--workers {w}", ("--workers", str(w)), config) for w in args.workers]
            if args.idle:
                idle = fleet_config(work / f"idle-{n}.yml", cluster, n, "1h", work)
                runs.append(("idle, --workers 2", ("--workers", "2"), idle))
            for label, flags, path in runs:
                daemon = start(path, work / f"{n}-{label.replace(' ', '')}", flags)
                try:
                    report(f"{n} targets, {label}", n, measure(daemon, args.seconds))
                finally:
                    daemon.stop()
            if args.shards:
                shards = [
                    start(
                        config,
                        work / f"shard-{n}-{i}",
                        ("--shard", str(i), "--total-shards", str(args.shards), "--workers", "0"),
                    )
                    for i in range(args.shards)
                ]
                try:
                    with ThreadPoolExecutor(len(shards)) as pool:  # measured at the same time
                        results = list(pool.map(lambda d: measure(d, args.seconds), shards))
                    for i, m in enumerate(results):
                        report(f"{n} targets, shard {i} of {args.shards}", n, m)
                finally:
                    for daemon in shards:
                        daemon.stop()
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
