"""End to end, real processes only: a PostgreSQL whose archive_command fails, drwatch scraping it,
Debian's prometheus evaluating the shipped rules, Debian's alertmanager routing with the example
config, and a webhook receiver standing in for the pager. A page arrives, then its resolution."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sandbox import alerting as alerting_stack
from sandbox.pgcluster import ARCHIVE_COPY, ARCHIVE_FAIL, PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import write_config

RPO = 20  # seconds: the objective, shortened in drwatch's config for the test


class Receiver:
    """The pager: records every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.notifications: list[tuple[str, dict[str, object]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.notifications.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path: str, status: str) -> list[dict[str, object]]:
        return [
            alert
            for got, body in self.notifications
            if got == path
            for alert in body["alerts"]  # type: ignore[attr-defined]
            if alert["status"] == status
        ]


@pytest.fixture
def clusters() -> Iterator[tuple[PgCluster, PgCluster]]:
    broken, healthy = PgCluster().init(ARCHIVE_COPY).start(), PgCluster().init(ARCHIVE_COPY).start()
    try:
        for cluster in (broken, healthy):  # everything written so far is in the archive
            cluster.execute("SELECT pg_switch_wal()")
            wait_until(
                lambda c=cluster: c.execute(
                    "SELECT last_archived_wal IS NOT NULL FROM pg_stat_archiver"
                )[0][0],
                30,
                what="first segment archived",
            )
        yield broken, healthy
    finally:
        broken.destroy()
        healthy.destroy()


def test_a_failing_archiver_pages_and_the_fix_resolves(
    clusters: tuple[PgCluster, PgCluster],
) -> None:
    broken, healthy = clusters
    work = Path(tempfile.mkdtemp(prefix="drwatch-e2e-"))
    alerting: alerting_stack.Alerting | None = None
    daemon: DaemonProcess | None = None
    receiver = Receiver()
    try:
        drwatch_config = write_config(
            work / "drwatch.yml",
            [
                {
                    "name": name,
                    "objectives": {"pitr": {"rpo": f"{RPO}s"}},
                    "postgres": {
                        "dsn": cluster.dsn(),
                        "interval": "2s",
                        "timeout": "2s",
                        "replication": {"enabled": False},  # single nodes: no failover scenario
                    },
                }
                for name, cluster in (("broken", broken), ("healthy", healthy))
            ],
        )
        daemon = DaemonProcess(drwatch_config, work, workers=None)
        alerting = alerting_stack.start(work, daemon.port, receiver.url)
        broken.set(archive_command=ARCHIVE_FAIL)
        broke_at = time.monotonic()

        def write_and_check_page() -> list[dict[str, object]]:
            broken.execute(
                "CREATE TABLE IF NOT EXISTS w (x int); INSERT INTO w VALUES (1); SELECT pg_switch_wal()"
            )
            return [
                a
                for a in receiver.alerts("/pager", "firing")
                if a["labels"]["alertname"] == "DrwatchRPOBreached"  # type: ignore[index]
            ]

        pages = wait_until(write_and_check_page, 240, interval=2, what="the pitr page")
        paged_after = time.monotonic() - broke_at
        page = pages[0]
        assert page["labels"]["target"] == "broken" and page["labels"]["scenario"] == "pitr"  # type: ignore[index]
        assert page["labels"]["severity"] == "page"  # type: ignore[index]
        assert page["annotations"]["runbook_url"].endswith("docs/runbook.md#rpo-breached-pitr")  # type: ignore[index]

        broken.set(archive_command=ARCHIVE_COPY.format(archive=broken.archive))
        fixed_at = time.monotonic()
        wait_until(
            lambda: any(
                a["labels"]["alertname"] == "DrwatchRPOBreached"
                for a in receiver.alerts("/pager", "resolved")
            ),  # type: ignore[index]
            180,
            interval=2,
            what="the resolved notification",
        )
        resolved_after = time.monotonic() - fixed_at
        assert not [
            a
            for _, b in receiver.notifications
            for a in b["alerts"]
            if a["labels"].get("target") == "healthy"
        ]  # type: ignore[attr-defined,index]
        print(
            f"\npaged {paged_after:.0f} s after the archiver broke; resolved {resolved_after:.0f} s after the fix"
        )
    finally:
        if alerting is not None:
            alerting.stop()
        if daemon is not None:
            daemon.stop()
        receiver.server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
