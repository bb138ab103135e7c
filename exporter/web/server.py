"""The HTTP server: prometheus_client's threading WSGI server and silent handler, on the address
`--web.listen-address` names (IPv4 or IPv6)."""

from __future__ import annotations

import socket
import threading
from wsgiref.simple_server import make_server

from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from exporter.web.app import WsgiApp


class _ServerV6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


def parse_listen_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address {address!r}: expected [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an exporter listens on all by default


class HttpServer:
    def __init__(self, address: str, app: WsgiApp) -> None:
        host, port = parse_listen_address(address)
        server_class = _ServerV6 if ":" in host else ThreadingWSGIServer
        self.server = make_server(
            host, port, app, server_class=server_class, handler_class=_SilentHandler
        )
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never ran
            self.server.shutdown()
        self.server.server_close()
