"""POST /webhook/alertmanager: Alertmanager's webhook as a remediation trigger.

Bearer-token authenticated; each firing alert whose name the config maps to an action requests
that action on the alert's `target`. The engine applies every rule it always applies (the lock,
guards, filters, limits, cooldown, kill switch, dry-run) and audits the decisions; the alert
only stands in for the action's own trigger.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from core.config.remediation import Action
from core.config.schema import Config
from exporter.remediation.engine import RemediationEngine
from exporter.remediation.triggers import configured_actions

log = logging.getLogger("drwatch.remediation")

WEBHOOK_PATH = "/webhook/alertmanager"
MAX_BODY_BYTES = 1 << 20  # Alertmanager's payloads are small; a bigger one is not Alertmanager

StartResponse = Callable[..., Any]


def _reply(
    start_response: StartResponse, status: str, doc: object, *headers: tuple[str, str]
) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), *headers])
    return [json.dumps(doc).encode() + b"\n"]


class BadRequest(ValueError):
    """The body is not Alertmanager's webhook JSON; the message says where."""


def parse_alerts(body: bytes) -> list[dict[str, Any]]:
    """The alerts of Alertmanager's webhook body, each an object with `labels` an object."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest("not JSON (or nested too deep)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise BadRequest("expected an object with an `alerts` list")
    for i, alert in enumerate(doc["alerts"]):
        if not isinstance(alert, dict) or not isinstance(alert.get("labels", {}), dict):
            raise BadRequest(f"alerts[{i}]: expected an object whose `labels` is an object")
    return list(doc["alerts"])


def requested_actions(
    config: Config, alerts: list[dict[str, Any]]
) -> tuple[dict[str, dict[Action, str]], int]:
    """Firing alerts → {target: {action: why}}; and how many alerts were ignored."""
    hook = config.remediation.webhook
    assert hook is not None
    targets = {t.name: t for t in config.targets}
    out: dict[str, dict[Action, str]] = {}
    ignored = 0
    for alert in alerts:
        labels = alert.get("labels", {})
        name, target_name = labels.get("alertname"), labels.get("target")
        action = hook.alerts.get(name) if isinstance(name, str) else None
        target = targets.get(target_name) if isinstance(target_name, str) else None
        if (
            alert.get("status") != "firing"
            or action is None
            or target is None
            or not config.remediation_for(target).enabled
            or action not in configured_actions(config, target)
        ):
            ignored += 1
            continue
        out.setdefault(target.name, {})[action] = f"alert {name}"
    return out, ignored


class RefusalLog:
    """One warning per `every` seconds about refused requests, however many arrive: a flood of
    bad tokens must not flood the log."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._last: float | None = None
        self._unlogged = 0

    def refused(self) -> None:
        with self._lock:
            self._unlogged += 1
            now = self.clock()
            if self._last is not None and now - self._last < self.every:
                return
            count, self._unlogged, self._last = self._unlogged, 0, now
        log.warning(
            "remediation webhook: request(s) refused (bad or missing bearer token)",
            extra={"refused": count},
        )


def webhook_app(
    engine: RemediationEngine, config: Callable[[], Config]
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    refusals = RefusalLog()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        current = config()
        hook = current.remediation.webhook
        if hook is None:
            return _reply(start_response, "404 Not Found", {"error": "webhook not configured"})
        if environ.get("REQUEST_METHOD") != "POST":
            return _reply(
                start_response,
                "405 Method Not Allowed",
                {"error": "POST only"},
                ("Allow", "POST"),
            )
        # WSGI hands headers over as latin-1 text: back to the bytes the client sent.
        offered = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if not hmac.compare_digest(offered, f"Bearer {hook.token}".encode()):
            refusals.refused()
            return _reply(
                start_response,
                "401 Unauthorized",
                {"error": "bearer token required"},
                ("WWW-Authenticate", 'Bearer realm="drwatch"'),
            )
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            return _reply(start_response, "400 Bad Request", {"error": "body length"})
        try:
            alerts = parse_alerts(environ["wsgi.input"].read(length))
        except BadRequest as exc:
            return _reply(start_response, "400 Bad Request", {"error": str(exc)})
        requested, ignored = requested_actions(current, alerts)
        for name, actions in requested.items():
            log.info(
                "remediation requested by alert",
                extra={
                    "target": name,
                    "actions": sorted(actions),
                    "triggers": sorted(actions.values()),
                },
            )
            engine.run_in_background(current, current.target(name), {}, requested=actions)
        accepted = {name: sorted(actions) for name, actions in requested.items()}
        return _reply(start_response, "202 Accepted", {"accepted": accepted, "ignored": ignored})

    return app
