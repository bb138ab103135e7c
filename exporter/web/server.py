"""The HTTP server: prometheus_client's threading WSGI server and silent handler, hardened so a
stray or hostile client cannot blind the monitor.

- A listen backlog of 1024: a burst of scrapes waits in the kernel instead of being dropped.
- At most `MAX_CONNECTIONS` connections are served at once (a thread and a descriptor each), so
  clients can never take the descriptors the checks need. When the cap is reached, the
  connection that has waited longest for its request (a slow or half-sent one, older than
  `READ_GRACE`) is dropped to make room; a burst of real scrapes waits its turn in the backlog.
- Every read and write on a connection times out after `IO_TIMEOUT`.
- A client address that goes on sending unverified requests past its 429s is closed as it is
  accepted (exporter.web.basicauth): a flood costs the accept loop, not the scrapes.
- Errors are logged through the redacting logger, never printed raw to stderr.
- Under TLS the accept loop only wraps the socket; the handshake runs in the connection's own
  thread under the same timeout and slot rules, so a client that never finishes its handshake
  costs one slot for a while, never the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from typing import IO, Any
from wsgiref.simple_server import make_server

from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

from exporter.web.app import WsgiApp
from exporter.web.security import PeerRefused, WebSecurity

log = logging.getLogger("drwatch.http")

MAX_CONNECTIONS = 64
READ_GRACE = 0.1  # a real client's request is read well within this once its thread runs
IO_TIMEOUT = 10.0
SLOT_WAIT = 5.0  # how long a new connection may wait for a slot before it is refused


class _LogStream:
    """What wsgiref writes to its 'stderr' (an application's traceback) goes to the log."""

    def write(self, text: str) -> int:
        if text.strip():
            log.error("http: %s", text.strip())
        return len(text)

    def flush(self) -> None:
        pass


class _Handler(_SilentHandler):
    timeout = IO_TIMEOUT  # the socket timeout of every read and write (and the TLS handshake)

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
                self.server.security.check_peer(self.connection)  # type: ignore[attr-defined]
            except (OSError, PeerRefused) as exc:  # ssl.SSLError is an OSError
                # A scanner, plain HTTP on the TLS port, a refused client certificate: routine.
                log.info("http: TLS connection refused: %s", _why(exc))
                return
        super().handle()

    def parse_request(self) -> bool:
        parsed = bool(super().parse_request())
        self.server.request_read(self.connection)  # type: ignore[attr-defined]
        return parsed

    def get_stderr(self) -> IO[str]:
        return _LogStream()  # type: ignore[return-value]


class _Server(ThreadingWSGIServer):
    request_queue_size = 1024
    security: WebSecurity  # set by HttpServer before it serves

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.Condition()
        self._reading: dict[socket.socket, float] = {}  # accepted, request not read yet: since
        self._serving: set[socket.socket] = set()
        self._closing: set[socket.socket] = set()  # dropped readers whose thread is ending
        super().__init__(*args, **kwargs)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        self.security.refresh()
        context = self.security.settings.tls
        if context is not None:  # no I/O here: the handshake is the connection thread's
            connection = context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """An address flooding past its 429s is closed here: no handshake, no thread, no slot."""
        return not self.security.shunned(str(client_address[0]))

    def process_request(self, request: Any, client_address: Any) -> None:
        deadline = time.monotonic() + SLOT_WAIT
        with self._slots:
            while len(self._reading) + len(self._serving) >= MAX_CONNECTIONS:
                if not self._closing:
                    self._drop_slowest_reader()
                self._slots.wait(min(0.02, max(0.0, deadline - time.monotonic())))
                if time.monotonic() >= deadline:
                    log.warning("http: connection refused: %d in use", MAX_CONNECTIONS)
                    self.shutdown_request(request)
                    return
            self._reading[request] = time.monotonic()
        super().process_request(request, client_address)

    def _drop_slowest_reader(self) -> None:
        now = time.monotonic()
        slow = [(since, s) for s, since in self._reading.items() if now - since > READ_GRACE]
        if slow:
            _, victim = min(slow, key=lambda pair: pair[0])
            self._reading.pop(victim)
            self._serving.add(victim)  # its thread still ends it and frees the slot
            self._closing.add(victim)
            with contextlib.suppress(OSError):
                victim.shutdown(socket.SHUT_RDWR)  # wakes its thread out of recv()

    def request_read(self, request: socket.socket) -> None:
        with self._slots:
            if self._reading.pop(request, None) is not None:
                self._serving.add(request)

    def shutdown_request(self, request: Any) -> None:
        with self._slots:
            self._reading.pop(request, None)
            self._serving.discard(request)
            self._closing.discard(request)
            self._slots.notify()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("http: error while serving a request")


class _ServerV6(_Server):
    address_family = socket.AF_INET6


def parse_listen_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--web.listen-address {address!r}: expected [host]:port")
    return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - an exporter listens on all by default


def _why(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or type(exc).__name__
    return str(exc) or type(exc).__name__


class HttpServer:
    def __init__(self, address: str, app: WsgiApp, security: WebSecurity | None = None) -> None:
        host, port = parse_listen_address(address)
        server_class = _ServerV6 if ":" in host else _Server
        self.server = make_server(
            host, port, app, server_class=server_class, handler_class=_Handler
        )
        self.server.security = security or WebSecurity(None)
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
