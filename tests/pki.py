"""Certificates for the TLS tests, made with the openssl command: a CA, a server certificate for
127.0.0.1, client certificates, and a second CA whose certificates drwatch must refuse."""

from __future__ import annotations

import base64
import http.client
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import bcrypt


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _key_and_csr(name: str, cwd: Path) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
        cwd=cwd,
    )  # fmt: skip


@dataclass(frozen=True)
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def ca(self, name: str) -> None:
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={name}",
            cwd=self.dir,
        )  # fmt: skip

    def issue(self, name: str, ca: str, san: str) -> None:
        """`name`.crt and `name`.key, signed by `ca`, with subjectAltName `san`."""
        _key_and_csr(name, self.dir)
        (self.dir / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=self.dir,
        )  # fmt: skip

    def client_context(self, cert: str | None = None) -> ssl.SSLContext:
        """Trusts the CA that signed the server; presents `cert` when given."""
        context = ssl.create_default_context(cafile=self.path("ca.crt"))
        if cert:
            context.load_cert_chain(self.path(f"{cert}.crt"), self.path(f"{cert}.key"))
        return context


def make_pki(directory: Path) -> Pki:
    """ca: the CA; server (127.0.0.1); client (DNS:prometheus) and intruder (DNS:intruder)
    from ca; stranger from another CA, rogue-ca."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    pki.ca("ca")
    pki.ca("rogue-ca")
    pki.issue("server", "ca", "IP:127.0.0.1,DNS:localhost")
    pki.issue("client", "ca", "DNS:prometheus")
    pki.issue("intruder", "ca", "DNS:intruder")
    pki.issue("stranger", "rogue-ca", "DNS:prometheus")
    return pki


def bcrypt_hash(password: str) -> str:
    """As `htpasswd -nBC 10` writes it ($2y$): the form operators' files hold."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()
    return "$2y$" + hashed[4:]


def https_get(
    port: int,
    path: str,
    context: ssl.SSLContext,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def basic_auth_get(
    port: int, context: ssl.SSLContext, user: str, password: str, source: str, timeout: float = 10
) -> int:
    """GET /metrics over TLS with basic auth, from loopback address `source`: the status."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, timeout=timeout, context=context, source_address=(source, 0)
    )
    try:
        connection.request("GET", "/metrics", headers={"Authorization": f"Basic {auth}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
