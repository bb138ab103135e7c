"""--web.config.file for real: TLS, mutual TLS, basic auth, headers, reload on change, and
Debian's Prometheus scraping drwatch through all of it."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import ConfigError
from exporter.web.app import StartResponse, protect
from exporter.web.security import WebSecurity, load_web_config
from exporter.web.server import HttpServer
from sandbox.alerting import Process
from sandbox.pgcluster import free_port, wait_until
from tests.daemon import DaemonProcess
from tests.helpers import write_config
from tests.pki import Pki, bcrypt_hash, https_get, make_pki

WEBHOOK = "/hook"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _ok(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"ok {environ['PATH_INFO']}\n".encode()]


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _tls(pki: Pki, **more: Any) -> dict[str, Any]:
    return {
        "cert_file": str(pki.path("server.crt")),
        "key_file": str(pki.path("server.key")),
        **more,
    }


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], tuple[int, Path]]]:
    """Serves a plain app behind the web config given, as the daemon does; (port, file)."""
    servers: list[HttpServer] = []

    def start(config: dict[str, Any]) -> tuple[int, Path]:
        file = _write(tmp_path / "web.yml", config)
        security = WebSecurity(file)
        server = HttpServer("127.0.0.1:0", protect(_ok, security, {WEBHOOK}), security)
        server.start()
        servers.append(server)
        return server.port, file

    yield start
    for server in servers:
        server.stop()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_tls_serves_with_the_configured_certificate(serve: Any, pki: Pki) -> None:
    port, _ = serve({"tls_server_config": _tls(pki)})
    status, _, body = https_get(port, "/metrics", pki.client_context())
    assert (status, body) == (200, "ok /metrics\n")
    with pytest.raises(ssl.SSLCertVerificationError):  # a client that trusts another CA
        https_get(port, "/metrics", ssl.create_default_context(cafile=pki.path("rogue-ca.crt")))


def test_plain_http_to_the_tls_port_fails_and_tls_goes_on(serve: Any, pki: Pki) -> None:
    port, _ = serve({"tls_server_config": _tls(pki)})
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        plain.request("GET", "/metrics")
        plain.getresponse()
    plain.close()
    assert https_get(port, "/metrics", pki.client_context())[0] == 200


def test_a_client_stuck_in_its_handshake_does_not_stop_others(serve: Any, pki: Pki) -> None:
    port, _ = serve({"tls_server_config": _tls(pki)})
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:  # connected, never says hello: the accept loop must not wait on them
        assert https_get(port, "/metrics", pki.client_context())[0] == 200
    finally:
        for sock in silent:
            sock.close()


def test_basic_auth(serve: Any, pki: Pki) -> None:
    port, _ = serve(
        {"tls_server_config": _tls(pki), "basic_auth_users": {"prom": bcrypt_hash("s3cret")}}
    )
    context = pki.client_context()
    assert https_get(port, "/metrics", context, _basic("prom", "s3cret"))[0] == 200
    for headers in (
        {},
        _basic("prom", "wrong"),
        _basic("nobody", "s3cret"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Bearer s3cret"},
    ):
        status, response_headers, body = https_get(port, "/", context, headers)
        assert status == 401, headers
        assert response_headers["WWW-Authenticate"].startswith("Basic ")
        assert "s3cret" not in body
    # The webhook checks its own bearer token (Alertmanager sends one Authorization header).
    assert https_get(port, WEBHOOK, context)[0] == 200


def test_basic_auth_without_tls(serve: Any) -> None:
    port, _ = serve({"basic_auth_users": {"prom": bcrypt_hash("pw")}})
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers=_basic("prom", "pw")
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert refused.value.code == 401


def test_mutual_tls(serve: Any, pki: Pki) -> None:
    port, _ = serve(
        {
            "tls_server_config": _tls(
                pki,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(pki.path("ca.crt")),
            )
        }
    )
    assert https_get(port, "/metrics", pki.client_context("client"))[0] == 200
    for refused in (None, "stranger"):  # no certificate; one from another CA
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            https_get(port, "/metrics", pki.client_context(refused))


def test_client_allowed_sans(serve: Any, pki: Pki) -> None:
    port, _ = serve(
        {
            "tls_server_config": _tls(
                pki,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(pki.path("ca.crt")),
                client_allowed_sans=["prometheus"],
            )
        }
    )
    assert https_get(port, "/metrics", pki.client_context("client"))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError, http.client.RemoteDisconnected)):
        https_get(port, "/metrics", pki.client_context("intruder"))  # the CA's, wrong name


def test_min_version(serve: Any, pki: Pki) -> None:
    port, _ = serve({"tls_server_config": _tls(pki, min_version="TLS13")})
    old = pki.client_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        https_get(port, "/metrics", old)
    assert https_get(port, "/metrics", pki.client_context())[0] == 200


def test_response_headers(serve: Any) -> None:
    headers = {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}
    port, _ = serve({"http_server_config": {"headers": headers}})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert response.headers["X-Frame-Options"] == "deny"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_changed_file_is_picked_up_and_a_bad_one_keeps_the_running_one(
    serve: Any, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    port, file = serve({"basic_auth_users": {"prom": bcrypt_hash("old")}})

    def status(password: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics", headers=_basic("prom", password)
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    assert status("old") == 200
    _write(file, {"basic_auth_users": {"prom": bcrypt_hash("new")}})
    wait_until(lambda: status("new") == 200, 10, what="the new password")
    assert status("old") == 401

    _write(file, {"basic_auth_users": {"prom": "plain-password"}})
    wait_until(  # the running config stays
        lambda: status("new") == 200 and "web config rejected" in caplog.text,
        10,
        what="the rejection",
    )
    assert "plain-password" not in caplog.text


def test_a_renewed_certificate_serves_new_connections(serve: Any, pki: Pki) -> None:
    port, _ = serve({"tls_server_config": _tls(pki)})

    def certificate() -> bytes | None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with pki.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return tls.getpeercert(binary_form=True)

    before = certificate()
    pki.issue("server", "ca", "IP:127.0.0.1,DNS:localhost")  # same files, a new certificate
    os.utime(pki.path("server.crt"))
    wait_until(lambda: certificate() != before, 10, what="the renewed certificate")


def test_load_rejects_a_bad_file_naming_it(tmp_path: Path, pki: Pki) -> None:
    missing = _write(tmp_path / "web.yml", {"tls_server_config": _tls(pki, cert_file="nope.crt")})
    with pytest.raises(ConfigError) as exc:
        load_web_config(missing)
    assert str(missing) in str(exc.value) and "nope.crt" in str(exc.value)
    not_a_cert = _write(
        tmp_path / "web2.yml",
        {"tls_server_config": _tls(pki, cert_file=str(pki.path("client.csr")))},
    )
    with pytest.raises(ConfigError, match="cannot load the certificate and key"):
        load_web_config(not_a_cert)
    relative = _write(
        pki.path("web.yml"),
        {"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}},
    )
    assert load_web_config(relative).tls is not None  # names relative to the file's directory


# The daemon, its command line and Debian's Prometheus.


def _daemon_web_config(tmp_path: Path, pki: Pki, password: str) -> Path:
    return _write(
        tmp_path / "web.yml",
        {
            "tls_server_config": _tls(
                pki,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(pki.path("ca.crt")),
            ),
            "basic_auth_users": {"prometheus": bcrypt_hash(password)},
        },
    )


def _daemon(tmp_path: Path, web_config: Path) -> DaemonProcess:
    target = {"name": "cache", "redis": {"url": "redis://127.0.0.1:1/0"}}  # nothing there
    config = write_config(tmp_path / "drwatch.yml", [target], state_dir=str(tmp_path / "state"))
    return DaemonProcess(
        config, tmp_path, args=("--web.config.file", str(web_config)), plain_http=False
    )


def _up(prometheus_port: int, job: str) -> float | None:
    query = urllib.parse.urlencode({"query": f'up{{job="{job}"}}'})
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_over_mutual_tls_with_basic_auth(tmp_path: Path, pki: Pki) -> None:
    daemon = _daemon(tmp_path, _daemon_web_config(tmp_path, pki, "scrape-pw"))
    started = next(
        json.loads(line) for line in daemon.log().splitlines()
        if line.startswith("{") and json.loads(line)["msg"] == "drwatch started"
    )  # fmt: skip
    # The journal says how the endpoint is protected.
    assert (started["tls"], started["basic_auth"], started["client_certificates"]) == (
        True, True, True,
    )  # fmt: skip
    prometheus_port = free_port()
    tls_config = {
        "ca_file": str(pki.path("ca.crt")),
        "cert_file": str(pki.path("client.crt")),
        "key_file": str(pki.path("client.key")),
    }

    def job(name: str, password: str, tls: dict[str, str]) -> dict[str, Any]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": tls,
            "basic_auth": {"username": "prometheus", "password": password},
            "static_configs": [{"targets": [f"127.0.0.1:{daemon.port}"]}],
        }

    scrape = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            job("right", "scrape-pw", tls_config),
            job("wrong-password", "guess", tls_config),
            job("no-client-cert", "scrape-pw", {"ca_file": tls_config["ca_file"]}),
        ],
    }
    _write(tmp_path / "prometheus.yml", scrape)
    prometheus = Process(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        wait_until(lambda: _up(prometheus_port, "right") == 1.0, 60, what="scraped over TLS")
        wait_until(lambda: _up(prometheus_port, "wrong-password") == 0.0, 30, what="401")
        wait_until(lambda: _up(prometheus_port, "no-client-cert") == 0.0, 30, what="refused")
        query = urllib.parse.urlencode({"query": 'drwatch_build_info{job="right"}'})
        url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?{query}"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.load(response)["data"]["result"], "drwatch's metrics reached Prometheus"
        healthcheck = [str(Path(sys.executable).parent / "drwatch"), "healthcheck"]
        probe = subprocess.run(
            [*healthcheck, "--web.listen-address", f"127.0.0.1:{daemon.port}"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert probe.returncode == 0, probe.stderr  # the container's probe under mutual TLS
    finally:
        prometheus.stop()
        daemon.stop()
    assert "scrape-pw" not in daemon.log()


def test_the_daemon_rejects_a_bad_web_config_at_start_and_on_reload(
    tmp_path: Path, pki: Pki
) -> None:
    bad = _write(
        tmp_path / "bad.yml", {"tls_server_config": {"cert_file": str(pki.path("server.crt"))}}
    )
    config = write_config(tmp_path / "drwatch.yml", [{"name": "cache", "redis": {"url": ""}}])
    start = subprocess.run(
        [sys.executable, "-m", "exporter", "run", "--config", str(config),
         "--web.listen-address", f"127.0.0.1:{free_port()}", "--web.config.file", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert start.returncode == 1
    assert f"web config {bad}: tls_server_config" in start.stderr
    assert "set both cert_file and key_file" in start.stderr

    web_config = _daemon_web_config(tmp_path, pki, "pw")
    daemon = _daemon(tmp_path, web_config)
    context = pki.client_context("client")
    try:
        wait_until(
            lambda: (
                https_get(daemon.port, "/-/healthy", context, _basic("prometheus", "pw"))[0] == 200
            ),
            30,
            what="drwatch over TLS",
        )
        web_config.write_text("basic_auth_users: [not, a, mapping]\n")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "web config rejected" in daemon.log(), 10, what="the rejection")
        # The running config answers as before.
        assert https_get(daemon.port, "/metrics", context, _basic("prometheus", "pw"))[0] == 200
    finally:
        daemon.stop()


@pytest.mark.parametrize("version", ["TLS12", "TLS13"])
def test_the_health_probe_counts_a_refused_client_certificate_as_alive(
    serve: Any, pki: Pki, version: str
) -> None:
    port, _ = serve(
        {
            "tls_server_config": _tls(
                pki,
                min_version=version,
                max_version=version,
                client_auth_type="RequireAndVerifyClientCert",
                client_ca_file=str(pki.path("ca.crt")),
            ),
            "basic_auth_users": {"prom": bcrypt_hash("pw")},
        }
    )
    probe = [str(Path(sys.executable).parent / "drwatch"), "healthcheck"]
    alive = subprocess.run(
        [*probe, "--web.listen-address", f"127.0.0.1:{port}"], capture_output=True, text=True
    )
    assert alive.returncode == 0, alive.stderr
    assert alive.stdout.startswith("alive")
