"""/metrics under load and under hostile clients, against a running daemon.

    .venv/bin/python bench/http_scrapes.py [--targets 50] [--burst 200] [--rounds 3]

drwatch runs as users run it (its own process, under systemd's 1,024-descriptor limit) with
N targets on one real PostgreSQL, so /metrics has the size of a real estate's. Then:
1. bursts: `burst` scrapes released together by a barrier, `rounds` times; latency of each
   (connect to last byte) and how many failed;
2. slowloris: 300 connections each holding a half-sent request, then a normal scrape.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess


def scrape(url: str) -> float | None:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            resp.read()
    except OSError:
        return None
    return time.monotonic() - started


def burst(url: str, n: int) -> list[float | None]:
    barrier = threading.Barrier(n)
    out: list[float | None] = [None] * n

    def one(i: int) -> None:
        barrier.wait()
        out[i] = scrape(url)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def slowloris(port: int, url: str, held: int) -> list[float]:
    sockets = []
    for _ in range(held):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        sockets.append(s)
    try:
        time.sleep(1.0)  # let them age into "slow readers" (a benchmark, not a test)
        return [t for t in (scrape(url) for _ in range(5)) if t is not None]
    finally:
        for s in sockets:
            s.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cluster = PgCluster().init(None).start()
    work = Path(tempfile.mkdtemp())
    config = work / "drwatch.yml"
    targets = [
        {"name": f"db{i}", "postgres": {"dsn": cluster.dsn(), "interval": "15s"}}
        for i in range(args.targets)
    ]
    config.write_text(yaml.safe_dump({"targets": targets, "state_dir": str(work)}))
    daemon = DaemonProcess(config, work, wrapper=("prlimit", "--nofile=1024:1024", "--"), workers=None)
    try:
        wait_until(lambda: daemon.get("/-/ready", timeout=10)[0] == 200, 120, what="ready")
        url = f"{daemon.base}/metrics"
        size = len(daemon.metrics_text().splitlines())
        latencies: list[float] = []
        failed = 0
        for _ in range(args.rounds):
            results = burst(url, args.burst)
            failed += sum(r is None for r in results)
            latencies += [r for r in results if r is not None]
        total = args.burst * args.rounds
        print(f"/metrics: {size} lines, {args.targets} targets")
        print(
            f"{args.rounds} bursts of {args.burst} concurrent scrapes: {failed} of {total} failed"
        )
        print(
            f"latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
        )
        held = slowloris(daemon.port, url, 300)
        print(
            f"behind 300 half-sent requests: {len(held)}/5 scrapes answered, "
            f"median {statistics.median(held) * 1000:.1f} ms"
        )
    finally:
        daemon.stop()
        cluster.destroy()


if __name__ == "__main__":
    main()
