"""HTTP endpoints: /metrics, /-/healthy, /-/ready and a small landing page at /."""

from __future__ import annotations

import html
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import make_wsgi_app

from exporter import __version__
from exporter.results import ResultStore

StartResponse = Callable[..., Any]

_STATUS_COLOURS = {
    "OK": "#1a7f37",
    "WARNING": "#9a6700",
    "CRITICAL": "#cf222e",
    "UNKNOWN": "#6e7781",
}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # access logs stay out of the daemon's structured log


def landing_page(store: ResultStore) -> bytes:
    rows = []
    now = time.time()
    for (target, check), r in sorted(store.snapshot().results.items()):
        status = r.status.name
        rows.append(
            "<tr>"
            f"<td>{html.escape(target)}</td><td>{html.escape(check)}</td>"
            f'<td style="color:{_STATUS_COLOURS[status]};font-weight:bold">{status}</td>'
            f"<td>{html.escape(r.summary)}</td><td>{now - r.finished_at:.0f} s ago</td>"
            "</tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="5">no check has run yet</td></tr>'
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>drwatch</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;text-align:left}}</style>
</head><body>
<h1>drwatch {html.escape(__version__)}</h1>
<p><a href="/metrics">/metrics</a> · <a href="/-/healthy">/-/healthy</a> ·
<a href="/-/ready">/-/ready</a></p>
<table><tr><th>target</th><th>check</th><th>status</th><th>summary</th><th>last run</th></tr>
{body}
</table></body></html>"""
    return page.encode()


def make_app(
    registry: CollectorRegistry, store: ResultStore
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
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
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [landing_page(store)]
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
    def __init__(
        self, address: str, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
    ) -> None:
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
