"""A valid user's scrapes while clients flood drwatch with wrong basic-auth passwords.

    .venv/bin/python bench/auth_flood.py [--attackers 300] [--seconds 20]

drwatch runs as users run it (`drwatch run` in its own process) with --web.config.file: TLS
and one bcrypt user (cost 10, as `htpasswd -nBC 10` makes). `attackers` clients, each from a
loopback address of its own (127.0.X.Y), send wrong passwords as fast as they get answers for
`seconds`, from two processes of their own (so the valid client's timings are not the
attackers' interpreter lock). Two seconds into the flood, a valid client whose password drwatch
has not verified yet starts scraping /metrics every 100 ms from 127.0.0.1. Printed: how long its
first scrape took and its answers before a 200, the valid scrapes' p50/p99/max latency, the
attackers' answers by status, drwatch's CPU over the flood.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.pgcluster import wait_until
from tests.daemon import DaemonProcess
from tests.helpers import write_config
from tests.pki import basic_auth_get, bcrypt_hash, make_pki


def request(port: int, context, password: str, source: str) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    try:
        status = basic_auth_get(port, context, "prom", password, source, timeout=30)
    except OSError:
        status = 0
    return status, time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


def flood(port: int, pki_dir: str, first: int, count: int, seconds: float) -> dict[int, int]:
    """`count` attackers from `first` on, in this (worker) process: their answers by status."""
    from tests.pki import Pki

    context = Pki(Path(pki_dir)).client_context()
    stop = time.monotonic() + seconds
    answers: Counter[int] = Counter()

    def attack(n: int) -> None:
        while time.monotonic() < stop:
            source = f"127.0.{1 + n // 250}.{1 + n % 250}"
            answers[request(port, context, f"wrong{n}", source)[0]] += 1

    threads = [threading.Thread(target=attack, args=(n,)) for n in range(first, first + count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(answers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attackers", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        web = root / "web.yml"
        web.write_text(yaml.safe_dump({
            "tls_server_config": {"cert_file": str(pki.path("server.crt")),
                                  "key_file": str(pki.path("server.key"))},
            "basic_auth_users": {"prom": bcrypt_hash("s3cret")},
        }))  # fmt: skip
        target = {"name": "cache", "redis": {"url": "redis://127.0.0.1:1/0"}}
        config = write_config(root / "drwatch.yml", [target], state_dir=str(root / "state"))
        daemon = DaemonProcess(
            config, root, args=("--web.config.file", str(web)), plain_http=False, workers=None
        )
        try:
            context = pki.client_context()
            # Up, and serving: a 401 (a wrong password) from an address of its own; the valid
            # password is not verified before the flood.
            wait_until(lambda: request(daemon.port, context, "x", "127.0.5.5")[0] == 401, 30)
            before = cpu_seconds(daemon.proc.pid)
            half = args.attackers // 2
            with ProcessPoolExecutor(2) as pool:
                floods = [
                    pool.submit(flood, daemon.port, str(pki.dir), first, count, args.seconds)
                    for first, count in ((0, half), (half, args.attackers - half))
                ]
                time.sleep(2.0)  # the flood under way (pacing a benchmark, not synchronising)
                stop = time.monotonic() + args.seconds - 2.0
                valid: list[float] = []
                refused: Counter[int] = Counter()
                first_ok: float | None = None
                slow: list[tuple[float, float]] = []  # (since the valid client began, took)
                started = time.monotonic()
                while time.monotonic() < stop:
                    status, took = request(daemon.port, context, "s3cret", "127.0.0.1")
                    if status == 200:
                        first_ok = first_ok or time.monotonic() - started
                        valid.append(took)
                        if took > 0.1:
                            slow.append((round(time.monotonic() - started, 1), round(took, 3)))
                    elif first_ok is None:
                        refused[status] += 1
                    time.sleep(0.1)
                answers: Counter[int] = Counter()
                for done in floods:
                    answers.update(done.result())
            cpu = (cpu_seconds(daemon.proc.pid) - before) / args.seconds
            later = sorted(valid[len(valid) // 2 :])  # the run's second half: flooders shunned
            valid.sort()
            p99 = valid[min(len(valid) - 1, int(len(valid) * 0.99))]
            print(f"{args.attackers} attackers for {args.seconds:g} s: answers {dict(answers)}")
            print(f"valid scrapes over 100 ms (s into the flood, took): {slow}")
            print(f"valid client: first 200 after {first_ok or float('nan'):.2f} s "
                  f"(answers before it: {dict(refused) or 'none'})")  # fmt: skip
            print(
                f"valid scrapes: {len(valid)}, p50 {statistics.median(valid) * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms, max {valid[-1] * 1000:.1f} ms; "
                f"drwatch CPU {cpu * 100:.0f}% of one core"
            )
            print(
                f"second half: {len(later)} scrapes, p50 {statistics.median(later) * 1000:.1f} ms, "
                f"p99 {later[min(len(later) - 1, int(len(later) * 0.99))] * 1000:.1f} ms"
            )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
