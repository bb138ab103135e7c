"""The daemon's routes: /metrics, /-/healthy, /-/ready, the status page at / and /status.json,
and whatever the daemon adds (the remediation webhook)."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import make_wsgi_app

from exporter.runtime.current import Current
from exporter.runtime.results import ResultStore
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


def make_app(
    registry: CollectorRegistry,
    store: ResultStore,
    current: Callable[[], Current],
    routes: dict[str, WsgiApp] | None = None,
    drills: Callable[[], list[dict[str, Any]]] = list,
) -> WsgiApp:
    """`drills` gives the restore drills' rows of the status page (the daemon's engine)."""
    metrics_app = make_wsgi_app(registry)

    def document() -> dict[str, Any]:
        return status_document(current(), store.snapshot(), time.time(), drills())

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if routes and path in routes:
            return routes[path](environ, start_response)
        if path == "/-/healthy":
            return _text(start_response, "200 OK", "Healthy.\n")
        if path == "/-/ready":
            if store.complete():
                return _text(start_response, "200 OK", "Ready.\n")
            return _text(
                start_response,
                "503 Service Unavailable",
                "Not ready: checks still running their first round.\n",
            )
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


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]
