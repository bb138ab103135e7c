"""POST /webhook/alertmanager: alerts request remediation under every guard, on a running daemon."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from exporter.remediation.engine import RemediationEngine
from exporter.remediation.webhook import BadRequest, RefusalLog, parse_alerts, webhook_app
from sandbox.pgcluster import PgCluster, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import DSN, make_config
from tests.remediation import (
    Sessions,
    all_pids,
    idle_action,
    wait_aged,
    wait_gone,
    write_config,
)


def _post(url: str, doc: object, token: str | None = None) -> tuple[int, str]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(doc).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_alertmanager_webhook_triggers_an_action_under_every_guard(
    primary: PgCluster, sessions: Sessions, tmp_path: Path
) -> None:
    old = sorted(sessions.idle("app_a", "web") for _ in range(2))
    protected = sessions.idle("reporting", "web")
    wait_aged(primary, [*old, protected])
    token = "webhook-token-0123456789"
    remediation = {
        "enabled": True,
        "dry_run": False,
        "webhook": {
            "token": token,
            "alerts": {"DrwatchConnectionPoolSaturation": "terminate_idle_connections"},
        },
        # Its own trigger never fires here: only the alert can set it off.
        "actions": {
            "terminate_idle_connections": idle_action(
                when_utilization_above=1.0, only_as_needed=False
            )
        },
    }
    daemon = DaemonProcess(write_config(tmp_path, primary, remediation), tmp_path)
    try:
        wait_until(
            lambda: daemon.value("drwatch_remediation_leader", target="db") is not None,
            30,
            what="a remediation pass",
        )
        url = daemon.base + "/webhook/alertmanager"
        alert = {
            "status": "firing",
            "labels": {"alertname": "DrwatchConnectionPoolSaturation", "target": "db"},
        }
        payload = {
            "version": "4",
            "status": "firing",
            "alerts": [
                alert,
                {**alert, "status": "resolved"},
                {"status": "firing", "labels": {"alertname": "DrwatchDataGap", "target": "db"}},
                {**alert, "labels": {**alert["labels"], "target": "elsewhere"}},
            ],
        }
        assert _post(url, payload)[0] == 401
        assert _post(url, payload, "wrong-token-0123456789")[0] == 401
        assert daemon.get("/webhook/alertmanager")[0] == 405
        assert _post(url, {"not": "alertmanager"}, token)[0] == 400
        assert set(old) | {protected} <= set(all_pids(primary)), "nothing acts on its own"

        status, body = _post(url, payload, token)
        assert status == 202, body
        assert json.loads(body) == {
            "accepted": {"db": ["terminate_idle_connections"]},
            "ignored": 3,
        }
        wait_gone(primary, set(old))
        assert protected in all_pids(primary)
        audit_lines = [
            json.loads(line)
            for line in daemon.log().splitlines()
            if '"remediation decision"' in line
        ]
        executed = [line for line in audit_lines if line["outcome"] == "executed"]
        assert sorted(line["pid"] for line in executed) == old
        assert {line["trigger"] for line in executed} == {"alert DrwatchConnectionPoolSaturation"}
        assert any(
            line["pid"] == protected and line["outcome"] == "skipped" for line in audit_lines
        )
        assert token not in daemon.log()
    finally:
        daemon.stop()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"alerts": [1]}', "alerts[0]: expected an object"),
        (b'["firing"]', "expected an object with an `alerts` list"),
        (b'{"alerts": [null]}', "alerts[0]: expected an object"),
        (b'{"alerts": [{"labels": "x"}]}', "alerts[0]: expected an object whose `labels`"),
        (b'{"alerts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not JSON (or nested too deep)"),
        (b"\xff\xfe", "not JSON"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_400_naming_where(body: bytes, why: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(why)):
        parse_alerts(body)


def test_refusals_are_logged_once_a_minute_with_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = RefusalLog(every=60.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="drwatch.remediation")
    for _ in range(1000):
        refusals.refused()
    now[0] = 61.0
    refusals.refused()
    counts = [r.refused for r in caplog.records]  # type: ignore[attr-defined]
    assert counts == [1, 1000]  # the first at once, then how many since, a minute later


def test_an_oversized_body_is_refused_unread() -> None:
    loaded = make_config(
        [{"name": "db", "postgres": {"dsn": DSN}}],
        remediation={
            "enabled": True,
            "actions": {"terminate_idle_connections": {"always": True}},
            "webhook": {"token": "webhook-token-0123456789", "alerts": {"A": "terminate_idle_connections"}},
        },
    )  # fmt: skip

    class Unreadable(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("an oversized body must not be read")

    app = webhook_app(RemediationEngine(), lambda: loaded.config)
    seen: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "HTTP_AUTHORIZATION": "Bearer webhook-token-0123456789",
        "CONTENT_LENGTH": str(100 * 1024 * 1024),
        "wsgi.input": Unreadable(),
    }
    body = b"".join(app(environ, lambda status, headers: seen.append(status)))
    assert seen == ["400 Bad Request"] and b"body length" in body
