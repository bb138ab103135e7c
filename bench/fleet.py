"""A fleet from one process and from two shards: CPU, memory and scrape latency while checks run.

    .venv/bin/python bench/fleet.py [--targets 50 200 500] [--seconds 60] [--shards 2]

For each fleet size N: drwatch as users run it (its own process, under systemd's
1,024-descriptor limit), N targets on one real PostgreSQL, every check on its default 15 s
interval. Once every check has run, for `seconds`: one scrape after another with 100 ms between
them (a few Prometheus servers' worth), latency from connect to last byte; the daemon's CPU
(user + system from /proc) over the same window, in cores; its RSS at the end. Then the same N
targets over `shards` replicas (--shard i --total-shards S), each measured the same way at once.
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

PAUSE = 0.1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Measured:
    lines: int
    cores: float
    rss_mb: float
    p50_ms: float
    p99_ms: float
    scrapes: int


def measure(daemon: DaemonProcess, seconds: float) -> Measured:
    url = f"{daemon.base}/metrics"
    pid = daemon.proc.pid
    latencies: list[float] = []
    lines = 0
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < seconds:
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
        latencies.append(time.monotonic() - started)
        lines = body.count(b"\n")
        time.sleep(PAUSE)  # the pace of the scrapers (a benchmark, not a synchronisation)
    cores = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return Measured(
        lines,
        cores,
        rss_mb(pid),
        statistics.median(latencies) * 1000,
        percentile(latencies, 99) * 1000,
        len(latencies),
    )


def start(config: Path, work: Path, args: tuple[str, ...] = ()) -> DaemonProcess:
    work.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(config, work, wrapper=("prlimit", "--nofile=1024:1024", "--"), args=args)
    wait_until(lambda: daemon.get("/-/ready", timeout=10)[0] == 200, 300, what="every check ran")
    return daemon


def report(label: str, m: Measured) -> None:
    print(
        f"{label}: {m.lines} lines, {m.cores:.2f} cores, RSS {m.rss_mb:.0f} MB, "
        f"scrape p50 {m.p50_ms:.1f} ms, p99 {m.p99_ms:.1f} ms ({m.scrapes} scrapes)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    cluster = PgCluster().init(None, max_connections="400").start()
    work = Path(tempfile.mkdtemp())
    try:
        for n in args.targets:
            config = work / f"fleet-{n}.yml"
            targets = [
                {"name": f"db{i}", "postgres": {"dsn": cluster.dsn(), "interval": "15s"}}
                for i in range(n)
            ]
            config.write_text(yaml.safe_dump({"targets": targets, "state_dir": str(work)}))
            daemon = start(config, work / f"one-{n}")
            try:
                report(f"{n} targets, one process", measure(daemon, args.seconds))
            finally:
                daemon.stop()
            shards = [
                start(
                    config,
                    work / f"shard-{n}-{i}",
                    ("--shard", str(i), "--total-shards", str(args.shards)),
                )
                for i in range(args.shards)
            ]
            try:
                with ThreadPoolExecutor(len(shards)) as pool:  # measured at the same time
                    results = list(pool.map(lambda d: measure(d, args.seconds), shards))
                for i, m in enumerate(results):
                    report(f"{n} targets, shard {i} of {args.shards}", m)
            finally:
                for daemon in shards:
                    daemon.stop()
    finally:
        cluster.destroy()


if __name__ == "__main__":
    main()
