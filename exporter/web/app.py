"""The daemon's routes: /metrics, /-/healthy, /-/ready, the status page at / and /status.json,
the runbook at /runbook, and whatever the daemon adds (the remediation webhook); basic auth and
response headers from the web config in front of them all."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from exporter.runtime.current import Current
from exporter.runtime.results import ResultStore
from exporter.web.basicauth import WINDOW_SECONDS, Outcome
from exporter.web.exposition import CONTENT_TYPE
from exporter.web.page import PageCache
from exporter.web.runbook import runbook_page
from exporter.web.security import WebSecurity
from exporter.web.statuspage import render, status_document

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


log = logging.getLogger("drwatch.http")
MAX_REFRESH = 86400


def refresh_seconds(query: str) -> int | None:
    """`?refresh=N` as whole seconds (1 to a day), or None for anything else."""
    value = parse_qs(query).get("refresh", [""])[0]
    if not (value.isascii() and value.isdigit() and len(value) <= 5):
        return None
    seconds = int(value)
    return seconds if 0 < seconds <= MAX_REFRESH else None


def metrics_app(page: PageCache) -> WsgiApp:
    """/metrics in the text format, as built before the request; gzip when asked."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
        body = page.body(gzipped)
        headers = [("Content-Type", CONTENT_TYPE), ("Vary", "Accept-Encoding")]
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return app


def make_app(
    metrics: PageCache,
    store: ResultStore,
    current: Callable[[], Current],
    routes: dict[str, WsgiApp] | None = None,
    drills: Callable[[], list[dict[str, Any]]] = list,
    compliance: Callable[[], dict[str, Any]] | None = None,
) -> WsgiApp:
    """`metrics` renders /metrics; `drills` gives the restore drills' rows of the status page;
    `compliance` each scenario's 30 days from drwatch's exposure record."""
    metrics_route = metrics_app(metrics)

    def document() -> dict[str, Any]:
        return status_document(
            current(), store.snapshot(), time.time(), drills(), compliance() if compliance else None
        )

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_route(environ, start_response)
        if routes and path in routes:
            return routes[path](environ, start_response)
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "Healthy.\n")
        if path == "/-/ready":
            if store.complete() and metrics.complete():
                return _text(start_response, "200 OK", "Ready.\n")
            return _text(
                start_response,
                "503 Service Unavailable",
                "Not ready: checks still running their first round.\n",
            )
        if path == "/runbook":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [runbook_page()]
        if path == "/status.json":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(document(), indent=2).encode()]
        if path == "/":
            seconds = refresh_seconds(environ.get("QUERY_STRING", ""))
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [render(document(), seconds).encode()]
        return _text(start_response, "404 Not Found", "Not found.\n")

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return list(app(environ, start_response))
        except Exception:  # a bug: logged (redacted) once, answered plainly, never a traceback
            log.exception("http: %s failed", environ.get("PATH_INFO", "?"))
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain; charset=utf-8")],
                sys.exc_info(),
            )
            return [b"Internal error; see drwatch's log.\n"]

    return guarded


def protect(app: WsgiApp, security: WebSecurity, self_authenticating: set[str]) -> WsgiApp:
    """Basic auth (when the web config has users) and the configured headers, on every path.

    A path in `self_authenticating` checks its own bearer token instead of the basic-auth user:
    Alertmanager sends one Authorization header, which cannot carry both (TLS and client
    certificates still apply to it)."""

    def protected(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        settings = security.settings
        extra = settings.headers

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, *extra], exc_info)

        if settings.users and environ.get("PATH_INFO", "/") not in self_authenticating:
            outcome = _basic_auth(environ, security)
            if outcome is Outcome.THROTTLED:
                start(
                    "429 Too Many Requests",
                    [("Content-Type", "text/plain; charset=utf-8"),
                     ("Retry-After", str(int(WINDOW_SECONDS)))],
                )  # fmt: skip
                return [b"Too many failed logins from this address; try again later.\n"]
            if outcome is not Outcome.OK:
                start(
                    "401 Unauthorized",
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("WWW-Authenticate", 'Basic realm="drwatch", charset="UTF-8"'),
                    ],
                )
                return [b"Unauthorized.\n"]
        return app(environ, start)

    return protected


def _basic_auth(environ: dict[str, Any], security: WebSecurity) -> Outcome:
    scheme, _, encoded = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if scheme.lower() != "basic":
        return Outcome.DENIED
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return Outcome.DENIED
    user, sep, password = decoded.partition(":")
    if not sep:
        return Outcome.DENIED
    return security.authorized(user, password, str(environ.get("REMOTE_ADDR", "")))


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]
