"""A valid user's scrapes while clients flood drwatch with wrong basic-auth passwords.

    .venv/bin/python bench/auth_flood.py [--attackers 20] [--seconds 20]

drwatch runs as users run it (`drwatch run` in its own process) with --web.config.file: TLS
and one bcrypt user (cost 10, as `htpasswd -nBC 10` makes). `attackers` clients, each from a
loopback address of its own (127.0.1.N), send wrong passwords as fast as they get answers for
`seconds`; one valid client scrapes /metrics every 100 ms from 127.0.0.1. Printed: the valid
scrapes' p50/p99/max latency, the attackers' answers by status, drwatch's CPU over the flood.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attackers", type=int, default=20)
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
        daemon = DaemonProcess(config, root, args=("--web.config.file", str(web)), plain_http=False)
        try:
            context = pki.client_context()
            wait_until(lambda: request(daemon.port, context, "s3cret", "127.0.0.1")[0] == 200, 30)
            stop = time.monotonic() + args.seconds
            answers: Counter[int] = Counter()
            valid: list[float] = []

            def attack(n: int) -> None:
                while time.monotonic() < stop:
                    status, _ = request(daemon.port, context, f"wrong{n}", f"127.0.1.{n + 1}")
                    answers[status] += 1

            def scrape() -> None:
                while time.monotonic() < stop:
                    status, took = request(daemon.port, context, "s3cret", "127.0.0.1")
                    if status == 200:
                        valid.append(took)
                    time.sleep(0.1)

            before = cpu_seconds(daemon.proc.pid)
            threads = [threading.Thread(target=attack, args=(n,)) for n in range(args.attackers)]
            threads.append(threading.Thread(target=scrape))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            cpu = (cpu_seconds(daemon.proc.pid) - before) / args.seconds
            valid.sort()
            p99 = valid[min(len(valid) - 1, int(len(valid) * 0.99))]
            print(f"{args.attackers} attackers for {args.seconds:g} s: answers {dict(answers)}")
            print(
                f"valid scrapes: {len(valid)}, p50 {statistics.median(valid) * 1000:.1f} ms, "
                f"p99 {p99 * 1000:.1f} ms, max {valid[-1] * 1000:.1f} ms; "
                f"drwatch CPU {cpu * 100:.0f}% of one core"
            )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
