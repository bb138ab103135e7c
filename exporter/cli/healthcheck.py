"""`drwatch healthcheck`: is the daemon on this machine answering? For the container's
HEALTHCHECK, which cannot see the daemon's flags: it asks over plain HTTP, and over TLS when the
port speaks TLS. Alive means an answer: 200, or 401 under basic auth (the probe knows no
password), or a TLS refusal for want of a client certificate under mutual TLS."""

from __future__ import annotations

import http.client
import ssl
import sys

from exporter.web.server import parse_listen_address

TIMEOUT = 4.0


REFUSED_AFTER_HANDSHAKE = -1  # the server completed a TLS handshake, then refused us


def _status(host: str, port: int, tls: bool) -> int:
    connection: http.client.HTTPConnection
    if tls:
        # Liveness on loopback, nothing secret sent: the daemon's certificate is not the point.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    try:
        connection.connect()  # TCP, and the TLS handshake: a failure here is a dead server
        try:
            connection.request("GET", "/-/healthy")
            return connection.getresponse().status
        except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
            if tls:  # TLS 1.3 checks the client's certificate after the handshake
                return REFUSED_AFTER_HANDSHAKE
            raise
    finally:
        connection.close()


def healthcheck(listen_address: str) -> int:
    host, port = parse_listen_address(listen_address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104 - a listen address
    try:
        try:
            status = _status(host, port, tls=False)
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
            status = _status(host, port, tls=True)  # a TLS port hangs up on plain HTTP
    except ssl.SSLError as exc:
        if "ALERT" in (exc.reason or ""):  # TLS 1.2 refuses a missing certificate in handshake
            print(f"alive: the TLS handshake was answered with an alert ({exc.reason})")
            return 0
        print(f"not healthy: TLS: {exc.reason or exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"not healthy: {listen_address}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if status == REFUSED_AFTER_HANDSHAKE:
        print("alive: TLS handshake done, request refused (mutual TLS wants a certificate)")
        return 0
    if status in (200, 401):
        print(f"alive: /-/healthy answered {status}")
        return 0
    print(f"not healthy: /-/healthy answered {status}", file=sys.stderr)
    return 1
