"""HTTP endpoints: /metrics, /-/healthy, /-/ready, the status page at / and /status.json, and
the remediation webhook (exporter.remediation_webhook) when the daemon passes it."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import make_wsgi_app

from exporter.collector import Current
from exporter.results import ResultStore
from exporter.statuspage import render, status_document

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs stay out of the daemon's structured log


def make_app(
    registry: CollectorRegistry,
    store: ResultStore,
    current: Callable[[], Current],
    routes: dict[str, WsgiApp] | None = None,
) -> WsgiApp:
    metrics_app = make_wsgi_app(registry)

    def document() -> dict[str, Any]:
        return status_document(current(), store.snapshot(), time.time())

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
            query = parse_qs(environ.get("QUERY_STRING", ""))
            refresh = query.get("refresh", [""])[0]
            seconds = int(refresh) if refresh.isdigit() and int(refresh) > 0 else None
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [render(document(), seconds).encode()]
        return _text(start_response, "404 Not Found", "Not found.\n")

    return app


def _text(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
    return [text.encode()]


def parse_listen_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address {address!r}: expected [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an exporter listens on all by default


class HttpServer:
    def __init__(self, address: str, app: WsgiApp) -> None:
        host, port = parse_listen_address(address)
        server_class = _ThreadingServerV6 if ":" in host else _ThreadingServer
        self.server = make_server(
            host, port, app, server_class=server_class, handler_class=_QuietHandler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
