"""The status page and /status.json, from a live daemon, in headless Chromium too."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from exporter.web.statuspage import render
from sandbox.pgcluster import PgCluster, free_port, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import write_config

HOSTILE = '<script>alert("x")</script>'
CHROMIUM = (
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def test_every_value_is_escaped() -> None:
    doc = {
        "version": "1",
        "status": "CRITICAL",
        "checks": [
            {
                "target": "t<b>",
                "check": "verification",
                "section": "postgres",
                "status": "CRITICAL",
                "summary": f'relation "{HOSTILE}" does not exist',
                "up": False,
                "last_run_seconds_ago": 1.0,
                "last_success_seconds_ago": None,
            }
        ],
        "exposures": [
            {
                "target": "t<b>",
                "scenario": "pitr",
                "exposure_seconds": "+Inf",
                "objective_seconds": 300.0,
                "breached": True,
            }
        ],
        "off": [{"target": "t<b>", "section": "redis", "why": f"{HOSTILE} not set"}],
    }
    page = render(doc, refresh=30)
    assert "<script>" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "#rpo-breached-pitr" in page


@pytest.fixture
def daemon(cluster: PgCluster, tmp_path: Path) -> Iterator[DaemonProcess]:
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    config = write_config(
        tmp_path / "c.yml",
        [
            {
                "name": "healthy",
                "postgres": {
                    "dsn": cluster.dsn(),
                    "interval": "1s",
                    "replication": {"enabled": False},
                    # a table name full of markup: its error is shown as text, never run as script
                    "verification": {
                        "freshness": [{"table": HOSTILE, "column": "at", "max_age": "1h"}]
                    },
                },
                "redis": {"url": "${DRWATCH_TEST_UNSET:-}"},  # off: shown, greyed, with why
            },
            {
                "name": "broken",
                "postgres": {
                    "dsn": dead,
                    "interval": "1s",
                    "replication": {"enabled": False},
                },
            },
        ],
    )
    cluster.execute("SELECT pg_switch_wal()")
    d = DaemonProcess(config, tmp_path)
    try:
        wait_until(lambda: d.get("/-/ready")[0] == 200, 30, what="ready")
        yield d
    finally:
        d.stop()


def test_status_json(daemon: DaemonProcess) -> None:
    doc = json.loads(daemon.get("/status.json")[1])
    assert doc["status"] == "CRITICAL"
    rows = {(c["target"], c["check"]): c for c in doc["checks"]}
    assert rows[("healthy", "connections")]["status"] == "OK"
    assert rows[("broken", "connections")]["status"] == "CRITICAL"
    assert "cannot connect" in rows[("broken", "connections")]["summary"]
    assert rows[("broken", "connections")]["last_success_seconds_ago"] is None
    scenarios = {(x["target"], x["scenario"]): x for x in doc["exposures"]}
    assert scenarios[("broken", "pitr")]["exposure_seconds"] is None  # unmeasured, not zero
    assert scenarios[("broken", "pitr")]["objective_seconds"] == 300
    assert doc["off"] == [
        {
            "target": "healthy",
            "section": "redis",
            "why": "targets[0].redis.url is empty (DRWATCH_TEST_UNSET not set)",
        }
    ]
    assert rows[("healthy", "connections")]["section"] == "postgres"
    _, page = daemon.get("/")
    assert '<tr class="off" data-target="healthy" data-section="redis"' in page
    assert "targets[0].redis.url is empty (DRWATCH_TEST_UNSET not set)" in page
    # when it was made, as the report says when it was
    generated = datetime.fromisoformat(doc["generated_at"])
    assert abs(generated.timestamp() - time.time()) < 60
    assert '<time id="generated">' in page
    # the runbook of the version running, served by drwatch itself: every link lands
    assert '<a href="/runbook#check-connections">runbook</a>' in page
    status, runbook = daemon.get("/runbook")
    assert status == 200 and "<script" not in runbook
    assert '<a id="check-connections"></a>' in runbook and "<h3>connections</h3>" in runbook
    assert "<code>DrwatchRPOBreached</code>" in runbook  # an alert's name, findable


def test_chromium_renders_failing_as_critical_and_healthy_as_ok(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    profile = tmp_path / "chromium-profile"
    url = daemon.base + "/"
    dom = subprocess.run(
        [*CHROMIUM, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert 'data-target="healthy" data-check="connections"' in dom
    healthy = next(
        line
        for line in dom.splitlines()
        if 'data-target="healthy" data-check="connections"' in line
    )
    broken = next(
        line for line in dom.splitlines() if 'data-target="broken" data-check="connections"' in line
    )
    assert 'class="check status-ok"' in healthy and ">OK<" in healthy
    assert 'class="check status-critical"' in broken and ">CRITICAL<" in broken
    assert "<script>" not in dom  # the hostile table name is text in the DOM, not an element
    assert "&lt;script&gt;" in dom
    screenshot = tmp_path / "status-page.png"
    subprocess.run(
        [*CHROMIUM, f"--user-data-dir={profile}", "--window-size=1280,800", f"--screenshot={screenshot}", url],
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert screenshot.exists() and screenshot.stat().st_size > 10_000


def test_drills_show_the_measured_rto_beside_the_objective() -> None:
    drill = {
        "target": "app",
        "scenario": "full_restore",
        "status": "OK",
        "summary": "restored app.dump (1.2 MB), checked",
        "rto_measured_seconds": 9000.0,
        "rto_objective_seconds": 7200.0,
        "last_run_seconds_ago": 60.0,
        "last_success_seconds_ago": 60.0,
    }
    doc = {"version": "1", "status": "OK", "checks": [], "exposures": [], "off": []}
    page = render({**doc, "drills": [drill]})
    row = next(line for line in page.splitlines() if 'class="drill ' in line)
    assert '<td class="rto" style="color:#cf222e;font-weight:bold">2h30m</td>' in row
    assert "<td>2h</td>" in row and "restored app.dump" in row
    assert "Restore drills" not in render({**doc, "drills": []})  # no drill configured: no table


def test_the_headline_counts_drills() -> None:
    """A failed drill under a big OK badge: never. Drills that have not run yet do not count."""
    from exporter.web.statuspage import status_document

    class Current:
        jobs: list[object] = []
        off: list[object] = []
        config = None

    class Snap:
        results: dict[object, object] = {}
        last_success: dict[object, object] = {}

    def drill(status: str, ran: bool) -> dict[str, object]:
        return {"target": "app", "scenario": "pitr", "status": status, "summary": "x",
                "rto_measured_seconds": None, "rto_objective_seconds": 1800.0,
                "last_run_seconds_ago": 5.0 if ran else None, "last_success_seconds_ago": None}  # fmt: skip

    import exporter.web.statuspage as page

    original = page.exposure_rows
    page.exposure_rows = lambda *args: []  # type: ignore[assignment]
    try:
        failed = status_document(Current(), Snap(), 0.0, [drill("CRITICAL", True)])  # type: ignore[arg-type]
        waiting = status_document(Current(), Snap(), 0.0, [drill("UNKNOWN", False)])  # type: ignore[arg-type]
    finally:
        page.exposure_rows = original
    assert failed["status"] == "CRITICAL"
    assert waiting["status"] == "UNKNOWN"  # nothing ran at all: nothing to say OK about
    assert '">CRITICAL</span></h1>' in render(failed)  # the page's headline


def test_an_objective_not_set_says_so() -> None:
    drill = {"target": "cache", "scenario": "redis", "status": "OK", "summary": "loaded",
             "rto_measured_seconds": 3.0, "rto_objective_seconds": None,
             "last_run_seconds_ago": 1.0, "last_success_seconds_ago": 1.0}  # fmt: skip
    doc = {"version": "1", "status": "OK", "checks": [], "exposures": [], "off": [],
           "drills": [drill]}  # fmt: skip
    row = next(line for line in render(doc).splitlines() if 'class="drill ' in line)
    assert "<td>not set</td>" in row and "unmeasured" not in row


def test_rows_that_are_not_ok_link_to_their_checks_runbook_section() -> None:
    from checks.registry import REGISTRY

    runbook = (Path(__file__).resolve().parent.parent / "docs" / "runbook.md").read_text()
    for definition in REGISTRY:  # a link never dangles
        assert f'<a id="check-{definition.name}"></a>' in runbook, definition.name
    assert '<a id="wal-archiving-off"></a>' in runbook

    def row(check: str, status: str) -> dict[str, object]:
        return {"target": "db", "check": check, "section": "backups", "status": status,
                "summary": "x", "up": True, "last_run_seconds_ago": 1.0,
                "last_success_seconds_ago": 1.0}  # fmt: skip

    doc = {"version": "1", "status": "CRITICAL", "exposures": [], "off": [], "drills": [],
           "runbook_url": "https://wiki.example/dr", "checks": [row("backups", "CRITICAL"),
                                                                row("connections", "OK")]}  # fmt: skip
    page = render(doc)
    rows = page.split("<tr")
    critical = next(row for row in rows if 'data-check="backups"' in row)
    ok = next(row for row in rows if 'data-check="connections"' in row)
    assert '<a href="https://wiki.example/dr#check-backups">runbook</a>' in critical
    assert "runbook" not in ok
    assert '<a href="https://wiki.example/dr">runbook</a>' in page  # the header's link too


def test_each_objective_shows_its_share_of_time_within_from_drwatchs_record() -> None:
    def exposure(scenario: str, compliance: dict[str, object] | None) -> dict[str, object]:
        return {"target": "db", "scenario": scenario, "exposure_seconds": 10.0,
                "objective_seconds": 300.0, "breached": False, "compliance_30d": compliance}  # fmt: skip

    month = {"ratio": 0.99931, "minutes_recorded": 43200}
    young = {"ratio": 0.5, "minutes_recorded": 120}
    doc = {"version": "1", "status": "OK", "checks": [], "off": [],
           "exposures": [exposure("pitr", month), exposure("full_restore", young),
                         exposure("redis", None)]}  # fmt: skip
    rows = [row for row in render(doc).split("<tr") if 'class="exposure ' in row]
    assert '<td class="compliance">99.931% of 30 d</td>' in rows[0]
    assert '<td class="compliance">50.000% of the 2h recorded</td>' in rows[1]
    assert '<td class="compliance">not recorded yet</td>' in rows[2]


def test_a_drill_row_shows_the_runbooks_schedule_overdue_and_the_forecast() -> None:
    drill = {"target": "app", "scenario": "full_restore", "status": "OK", "summary": "ok",
             "rto_measured_seconds": 3000.0, "rto_objective_seconds": 7200.0,
             "last_run_seconds_ago": 10 * 86400.0, "last_success_seconds_ago": 10 * 86400.0,
             "test": "Restore to staging", "frequency": "weekly", "schedule": "0 3 * * 0",
             "next_run_in_seconds": 3600.0, "max_age_seconds": 8 * 86400.0, "overdue": True,
             "rto_forecast_seconds": {"30d": 9000.0, "90d": 20000.0}}  # fmt: skip
    doc = {"version": "1", "status": "OK", "checks": [], "exposures": [], "off": [],
           "drills": [drill]}  # fmt: skip
    row = next(r for r in render(doc).split("<tr") if 'class="drill ' in r)
    assert "<td>Restore to staging (weekly)</td>" in row
    assert "OVERDUE; in 1h" in row
    assert 'class="forecast" style="color:#cf222e;font-weight:bold">2h30m<' in row
