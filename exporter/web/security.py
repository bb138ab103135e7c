"""The running web config: a TLS context for new connections, the basic-auth users, the response
headers. Read at start (a bad file stops the start), re-read on SIGHUP and whenever one of its
files changes (looked at once a second at most, when a connection arrives); a bad new version
is logged and the running one kept, like a bad drwatch config."""

from __future__ import annotations

import logging
import os
import ssl
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
from pydantic import ValidationError

from core.config.reading import decode, load_yaml, read_regular_file, yaml_path
from core.config.web import TlsServerConfig, WebConfigFile
from core.errors import ConfigError
from exporter.web.basicauth import Outcome, PasswordChecker

log = logging.getLogger("drwatch.http")

MAX_WEB_CONFIG_BYTES = 1 << 20
RECHECK_SECONDS = 1.0
TLS_VERSION = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# bcrypt of a random password: an unknown user costs what a known one does (no user probing).
_UNKNOWN_USER_HASH = bcrypt.hashpw(os.urandom(16), bcrypt.gensalt(10))
_SAN_KINDS = {"DNS", "IP Address", "email", "URI"}


class PeerRefused(Exception):
    """The client's certificate verified, but none of its names is in client_allowed_sans."""


@dataclass(frozen=True)
class WebSettings:
    tls: ssl.SSLContext | None
    allowed_sans: frozenset[str]
    users: dict[str, bytes]  # user name → bcrypt hash
    headers: list[tuple[str, str]]
    files: tuple[tuple[str, int, int], ...]  # (path, mtime_ns, size): what a change looks like


NO_SECURITY = WebSettings(None, frozenset(), {}, [], ())


def load_web_config(path: Path) -> WebSettings:
    """The settings the file describes; ConfigError naming the file and the key at fault."""
    where = f"web config {path}"
    try:
        data = load_yaml(decode(read_regular_file(path, MAX_WEB_CONFIG_BYTES), str(path)))
        parsed = WebConfigFile.model_validate(data or {})
    except ConfigError as exc:
        raise ConfigError([f"{where}: {problem}" for problem in exc.problems]) from None
    except ValidationError as exc:
        raise ConfigError(
            [f"{where}: {yaml_path(list(e['loc']))}: {_message(e)}" for e in exc.errors()]
        ) from None
    tls_config = parsed.tls_server_config
    files = [path, *_tls_files(tls_config, path.parent)]
    return WebSettings(
        tls=_tls_context(tls_config, path.parent, where) if tls_config.enabled else None,
        allowed_sans=frozenset(tls_config.client_allowed_sans),
        users={u: h.get_secret_value().encode() for u, h in parsed.basic_auth_users.items()},
        headers=parsed.http_server_config.headers.pairs(),
        files=_signature(files, where),
    )


def _message(error: object) -> str:
    kind, msg = error["type"], error["msg"]  # type: ignore[index]
    if kind == "extra_forbidden":
        return "unknown key"
    return str(msg).removeprefix("Value error, ")


def _tls_files(config: TlsServerConfig, base: Path) -> list[Path]:
    names = (config.cert_file, config.key_file, config.client_ca_file)
    return [base / name for name in names if name]  # an absolute name replaces base


def _signature(files: list[Path], where: str) -> tuple[tuple[str, int, int], ...]:
    signature = []
    for file in files:
        try:
            st = file.stat()
        except OSError as exc:
            raise ConfigError([f"{where}: cannot read {file}: {exc.strerror}"]) from None
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the TLS library's read forever
            raise ConfigError([f"{where}: cannot read {file}: not a regular file"])
        signature.append((str(file), st.st_mtime_ns, st.st_size))
    return tuple(signature)


def _tls_context(config: TlsServerConfig, base: Path, where: str) -> ssl.SSLContext:
    _signature(_tls_files(config, base), where)  # regular files only, before OpenSSL opens them
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSION[config.min_version]
    context.maximum_version = TLS_VERSION[config.max_version]
    if config.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        if config.cert_file:
            context.load_cert_chain(base / config.cert_file, base / config.key_file)
        else:
            _load_inline_chain(context, config.cert, config.key.get_secret_value())
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            [f"{where}: tls_server_config: cannot load the certificate and key: {_reason(exc)}"]
        ) from None
    context.verify_mode = CLIENT_AUTH[config.client_auth_type]
    try:
        if config.client_ca_file:
            context.load_verify_locations(cafile=base / config.client_ca_file)
        elif config.client_ca:
            context.load_verify_locations(cadata=config.client_ca)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            [f"{where}: tls_server_config: cannot load the client CA: {_reason(exc)}"]
        ) from None
    return context


def _load_inline_chain(context: ssl.SSLContext, cert: str, key: str) -> None:
    """OpenSSL loads a chain from files only: a private directory that lives for the load."""
    with tempfile.TemporaryDirectory(prefix="drwatch-tls-") as private:
        cert_path, key_path = Path(private, "cert.pem"), Path(private, "key.pem")
        for file, text in ((cert_path, cert), (key_path, key)):
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        context.load_cert_chain(cert_path, key_path)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.__class__.__name__  # never the PEM text
    return str(getattr(exc, "strerror", None) or exc)


class WebSecurity:
    """What `--web.config.file` asks of every connection and request; thread-safe."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._settings = load_web_config(path) if path else NO_SECURITY
        self._lock = threading.Lock()
        self._next_look = time.monotonic() + RECHECK_SECONDS
        self._rejected: tuple[tuple[str, int, int], ...] | None = None
        self.passwords = PasswordChecker()

    @property
    def settings(self) -> WebSettings:
        return self._settings

    def reload(self) -> bool:
        """Reads the file again; keeps the running settings (and says why) if it is bad."""
        if self.path is None:
            return True
        try:
            settings = load_web_config(self.path)
        except ConfigError as exc:
            log.error(
                "web config rejected; keeping the running one", extra={"problems": exc.problems}
            )
            return False
        with self._lock:
            self._settings = settings
        self.passwords.forget()
        log.info("web config loaded", extra={"file": str(self.path)})
        return True

    def refresh(self) -> None:
        """Re-reads the file if it or a file it names changed; at most once a second."""
        if self.path is None or time.monotonic() < self._next_look:
            return
        with self._lock:
            if time.monotonic() < self._next_look:
                return
            self._next_look = time.monotonic() + RECHECK_SECONDS
            running = self._settings.files
        try:
            now = _signature([Path(name) for name, _, _ in running], str(self.path))
        except ConfigError:
            now = ()
        if now != running and now != self._rejected:
            if not self.reload():
                self._rejected = now  # logged once per bad version, not once a second
            else:
                self._rejected = None

    def check_peer(self, connection: ssl.SSLSocket) -> None:
        """Raises PeerRefused unless the client's certificate names an allowed SAN."""
        allowed = self._settings.allowed_sans
        if not allowed:
            return
        alt_names: Any = (connection.getpeercert() or {}).get("subjectAltName", ())
        names = {str(value) for kind, value in alt_names if kind in _SAN_KINDS}
        if not names & allowed:
            raise PeerRefused(f"client certificate names {sorted(names)}, none allowed")

    def authorized(self, user: str, password: str, client: str = "") -> Outcome:
        """bcrypt-verified once per (user, password, hash); failures limited per client."""
        return self.passwords.check(
            self._settings.users, _UNKNOWN_USER_HASH, user, password, client
        )

    def shunned(self, client: str) -> bool:
        """Whether connections from `client` are closed unanswered (a flood past its 429s)."""
        return bool(self._settings.users) and self.passwords.shunned(client)
