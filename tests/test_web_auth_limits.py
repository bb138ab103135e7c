"""Basic auth as an attacker tries it, against a real TLS server: a password past bcrypt's 72
bytes, a hash bcrypt cannot use, a flood of wrong passwords from one address while a valid
client from another goes on being served."""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt as bcrypt_module
import pytest
import yaml

from core.errors import ConfigError
from exporter.web import basicauth
from exporter.web.app import StartResponse, protect
from exporter.web.basicauth import FAILURES_ALLOWED, Outcome, PasswordChecker
from exporter.web.security import WebSecurity, load_web_config
from exporter.web.server import HttpServer
from sandbox.pgcluster import wait_until
from tests.pki import Pki, basic_auth_get, bcrypt_hash, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _ok(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]


@pytest.fixture
def port(tmp_path: Path, pki: Pki) -> Iterator[int]:
    config = {
        "tls_server_config": {"cert_file": str(pki.path("server.crt")),
                              "key_file": str(pki.path("server.key"))},
        "basic_auth_users": {"prom": bcrypt_hash("s3cret")},
    }  # fmt: skip
    file = tmp_path / "web.yml"
    file.write_text(yaml.safe_dump(config))
    security = WebSecurity(file)
    server = HttpServer("127.0.0.1:0", protect(_ok, security, set()), security)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def _get(port: int, context: ssl.SSLContext, user: str, password: str, source: str) -> int:
    return basic_auth_get(port, context, user, password, source)


def test_a_password_longer_than_bcrypt_reads_is_a_401(port: int, pki: Pki) -> None:
    context = pki.client_context()
    for user in ("prom", "nobody"):
        assert _get(port, context, user, "x" * 73, "127.0.0.1") == 401
    assert _get(port, context, "prom", "s3cret", "127.0.0.1") == 200


def test_a_flood_of_wrong_passwords_is_throttled_per_address(port: int, pki: Pki) -> None:
    """One address guessing as fast as it is answered: a few 401s (a bcrypt each, at most its
    allowance), then 429s without one, then, past its 429s, its connections closed as they are
    accepted; another address is served as before."""
    context = pki.client_context()
    attacker, prometheus = "127.0.0.2", "127.0.0.3"  # two loopback addresses, two clients
    outcomes = []
    for i in range(basicauth.SHUN_AFTER + 4):
        try:
            outcomes.append(_get(port, context, "prom", f"guess{i}", attacker))
        except OSError:
            outcomes.append(0)  # closed as it connected
    assert outcomes[0] == 401 and set(outcomes) <= {401, 429, 0}, outcomes
    assert outcomes.count(401) <= FAILURES_ALLOWED
    assert outcomes[-4:] == [0] * 4, outcomes
    # Even the right password from the flooding address waits out the window...
    with pytest.raises(OSError):
        _get(port, context, "prom", "s3cret", attacker)
    # ...while another client is served as before.
    assert _get(port, context, "prom", "s3cret", prometheus) == 200


def test_wrong_guesses_never_flush_verified_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    checker = PasswordChecker()
    hashed = bcrypt_module.hashpw(b"s3cret", bcrypt_module.gensalt(4))
    users = {"prom": hashed}
    assert checker.check(users, hashed, "prom", "s3cret", "10.0.0.1") is Outcome.OK
    for i in range(2000):  # more distinct guesses than any cache holds, each its own address
        checker.check(users, hashed, "prom", f"guess{i}", f"127.1.{i // 250}.{i % 250}")

    def no_bcrypt(*args: object) -> bool:
        raise AssertionError("a verified password paid for bcrypt again")

    monkeypatch.setattr(basicauth.bcrypt, "checkpw", no_bcrypt)
    assert checker.check(users, hashed, "prom", "s3cret", "10.0.0.1") is Outcome.OK


def test_a_hash_bcrypt_cannot_use_is_refused_when_read(tmp_path: Path) -> None:
    for bad in ("$2y$10$truncated", "$2b$99$" + "a" * 53, "$2a$10$" + "!" * 53):
        file = tmp_path / "web.yml"
        file.write_text(yaml.safe_dump({"basic_auth_users": {"prom": bad}}))
        with pytest.raises(ConfigError) as caught:
            load_web_config(file)
        problem = " ".join(caught.value.problems)
        assert "basic_auth_users" in problem and "prom" in problem, problem
        assert bad not in problem  # a hash, maybe a password pasted by mistake: never echoed


def test_many_flooding_addresses_cannot_keep_a_new_scraper_out(port: int, pki: Pki) -> None:
    """100 addresses send wrong passwords as fast as they are answered; a scraper whose password
    is not verified yet gets its bcrypt turn ahead of them (200 within the bounded wait), then
    is served from the cache while the flood goes on."""
    context = pki.client_context()
    stop = threading.Event()
    answers: Counter[int] = Counter()

    asked: set[int] = set()  # addresses answered at least once (each has tried)

    def flood(n: int) -> None:
        while not stop.is_set():
            try:
                status = _get(port, context, "prom", f"guess{n}", f"127.0.{2 + n // 200}.{n % 200 + 2}")
            except OSError:  # closed as it connected: shunned
                status = 0
            answers[status] += 1
            asked.add(n)

    flooders = [threading.Thread(target=flood, args=(n,), daemon=True) for n in range(100)]
    for thread in flooders:
        thread.start()
    try:
        # Every flooding address past its first guess: a new scraper is told apart from them
        # by trying least (a first guess and a first scrape cannot be told apart).
        wait_until(lambda: len(asked) == 100 and answers[429] > 100, 60,
                   what="every address answered")  # fmt: skip
        started = time.monotonic()
        assert _get(port, context, "prom", "s3cret", "127.0.9.9") == 200
        first = time.monotonic() - started
        assert first < basicauth.BCRYPT_WAIT_SECONDS + 1.0, first
        statuses = [_get(port, context, "prom", "s3cret", "127.0.9.9") for _ in range(20)]
        assert statuses == [200] * 20  # verified: no bcrypt, no wait behind the guessers
    finally:
        stop.set()
        for thread in flooders:
            thread.join(10)
    assert answers[401] < 100 * FAILURES_ALLOWED  # the shared budget hashed fewer guesses
    # A flooder that went on past its 429s is closed as it connects: no handshake, no answer.
    with pytest.raises(OSError):
        _get(port, context, "prom", "s3cret", "127.0.2.2")
