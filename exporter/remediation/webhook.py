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


def requested_actions(
    config: Config, alerts: list[Any]
) -> tuple[dict[str, dict[Action, str]], int]:
    """Firing alerts → {target: {action: why}}; and how many alerts were ignored."""
    hook = config.remediation.webhook
    assert hook is not None
    targets = {t.name: t for t in config.targets}
    out: dict[str, dict[Action, str]] = {}
    ignored = 0
    for alert in alerts:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        labels = labels if isinstance(labels, dict) else {}
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


def webhook_app(
    engine: RemediationEngine, config: Callable[[], Config]
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
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
        offered = environ.get("HTTP_AUTHORIZATION", "").encode()
        if not hmac.compare_digest(offered, f"Bearer {hook.token}".encode()):
            log.warning("remediation webhook: request refused (bad or missing bearer token)")
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
            doc = json.loads(environ["wsgi.input"].read(length))
            alerts = doc["alerts"]
            if not isinstance(alerts, list):
                raise TypeError("alerts is not a list")
        except (ValueError, KeyError, TypeError):
            return _reply(
                start_response, "400 Bad Request", {"error": "expected Alertmanager's webhook JSON"}
            )
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
