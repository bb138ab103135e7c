"""The HTTP server under hostile clients: a stray client cannot blind the monitor."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from exporter.web.server import MAX_CONNECTIONS
from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess, http_get
from tests.helpers import write_config

HOSTILE = 300  # half-sent requests held open: far more than the cap


def _dropped(held: list[socket.socket]) -> int:
    """How many of `held` the server has closed (they read as end-of-stream)."""
    dropped = 0
    for s in held:
        s.setblocking(False)
        try:
            dropped += s.recv(1) == b""
        except BlockingIOError:
            pass  # still open
        except ConnectionResetError:
            dropped += 1
    return dropped


def test_half_sent_requests_beyond_the_cap_neither_block_scrapes_nor_starve_checks(
    cluster: PgCluster, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "c.yml", [{"name": "db", "postgres": {"dsn": cluster.dsn(), "interval": "1s"}}]
    )
    # systemd's default descriptor limit is 1,024; 256 leaves less room than the clients ask for.
    daemon = DaemonProcess(config, tmp_path, wrapper=("prlimit", "--nofile=256:256", "--"))
    held: list[socket.socket] = []
    try:
        wait_until(lambda: daemon.get("/-/ready")[0] == 200, 30, what="ready")
        for _ in range(HOSTILE):
            s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            held.append(s)
        # The server drops the slowest readers to stay under its cap: wait until it has.
        wait_until(
            lambda: _dropped(held) >= HOSTILE - MAX_CONNECTIONS, 15, what="slow readers dropped"
        )
        started = time.monotonic()
        status, body = http_get(f"{daemon.base}/metrics", timeout=5)
        latency = time.monotonic() - started
        assert status == 200 and "drwatch_check_up" in body
        print(f"/metrics behind {HOSTILE} slow clients: {latency * 1000:.1f} ms")
        assert latency < 0.5, f"/metrics took {latency:.3f} s behind {HOSTILE} slow clients"
        # The checks keep their descriptors: a run that started after the flood succeeds.
        flood_over = time.time()
        wait_until(
            lambda: (daemon.value("drwatch_check_last_success_timestamp_seconds", target="db",
                                  check="connections") or 0) > flood_over,
            15,
            what="a check run succeeding during the flood",
        )  # fmt: skip
        assert daemon.value("drwatch_check_up", target="db", check="connections") == 1
        assert "Too many open files" not in daemon.log()
        open_fds = len(list(Path(f"/proc/{daemon.proc.pid}/fd").iterdir()))
        assert open_fds < MAX_CONNECTIONS + 64, open_fds
    finally:
        for s in held:
            s.close()
        daemon.stop()
