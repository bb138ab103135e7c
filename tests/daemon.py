"""A drwatch daemon in its own process, as users run it, for the integration tests."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sandbox.pgcluster import free_port, wait_until


def http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class DaemonProcess:
    def __init__(
        self,
        config: Path,
        log_dir: Path,
        wrapper: tuple[str, ...] = (),
        args: tuple[str, ...] = (),  # more `drwatch run` flags
        plain_http: bool = True,  # False under a web config: wait for its log line instead
        # Where the checks run: most tests run them in the daemon's own process (a worker costs
        # each daemon start a second of CPU, and what they test does not depend on it); None
        # is drwatch's default, one worker per core, which test_daemon, test_e2e_paging,
        # test_workers and test_pgpool run.
        workers: int | None = 0,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / "drwatch.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                *wrapper,  # e.g. prlimit, to run drwatch under systemd's descriptor limit
                sys.executable,
                "-m",
                "exporter",
                "run",
                "--config",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
                "--log.format",
                "json",
                "--log.level",
                "debug",
                *(() if workers is None or "--workers" in args else ("--workers", str(workers))),
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            if plain_http:
                wait_until(lambda: self.get("/-/healthy")[0] == 200, 30, what="drwatch listening")
            else:
                wait_until(lambda: "drwatch started" in self.log(), 30, what="drwatch started")
        except BaseException:  # a daemon that never came up is not left running
            self.stop()
            raise

    def get(self, path: str, timeout: float = 3.0) -> tuple[int, str]:
        if self.proc.poll() is not None:
            raise RuntimeError(f"drwatch exited with {self.proc.returncode}: {self.log()}")
        return http_get(self.base + path, timeout)

    def metrics_text(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200
        return body

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        out = {}
        for family in text_string_to_metric_families(self.metrics_text()):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, tuple(sorted(labels.items()))))

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
