"""The web config file (`--web.config.file`) in the Prometheus exporter-toolkit format, so the
files operators already have for node_exporter and Prometheus work unchanged: TLS (mutual TLS
too), basic-auth users with bcrypt hashes, response headers.

What Python's TLS stack cannot do the way Go's does is refused by name rather than ignored:
a client certificate requested but not verified (RequestClientCert, RequireAnyClientCert), Go
cipher-suite and curve names, and the rate limiter.
"""

from __future__ import annotations

import re
from typing import Literal

import bcrypt
from pydantic import Field, SecretStr, field_validator, model_validator

from core.config.base import Strict

TLS_VERSIONS = ("TLS10", "TLS11", "TLS12", "TLS13")
TlsVersion = Literal["TLS10", "TLS11", "TLS12", "TLS13"]
# Go's tls.ClientAuthType names; drwatch verifies every client certificate it asks for.
VERIFYING_CLIENT_AUTH = ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class TlsServerConfig(Strict):
    cert_file: str = ""
    key_file: str = ""
    cert: str = ""  # PEM inline, instead of cert_file
    key: SecretStr = SecretStr("")  # PEM inline, instead of key_file
    client_auth_type: str = "NoClientCert"
    client_ca_file: str = ""
    client_ca: str = ""  # PEM inline, instead of client_ca_file
    client_allowed_sans: list[str] = []
    min_version: TlsVersion = "TLS12"
    max_version: TlsVersion = "TLS13"
    prefer_server_cipher_suites: bool = True
    cipher_suites: list[str] = []
    curve_preferences: list[str] = []

    @field_validator("client_auth_type")
    @classmethod
    def _known_client_auth(cls, value: str) -> str:
        if value in UNVERIFIED_CLIENT_AUTH:
            raise ValueError(
                f"{value} is not supported: drwatch verifies every client certificate it asks "
                "for; use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            )
        if value not in ("NoClientCert", *VERIFYING_CLIENT_AUTH):
            raise ValueError(
                f"unknown client_auth_type {value!r}: NoClientCert, VerifyClientCertIfGiven "
                "or RequireAndVerifyClientCert"
            )
        return value

    @field_validator("cipher_suites", "curve_preferences")
    @classmethod
    def _go_names(cls, value: list[str]) -> list[str]:
        if value:
            raise ValueError(
                "not supported: these are Go's names; drwatch uses OpenSSL's defaults "
                "(restrict versions with min_version instead)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TlsServerConfig:
        if self.cert_file and self.cert:
            raise ValueError("cert and cert_file are exclusive")
        if self.key_file and self.key.get_secret_value():
            raise ValueError("key and key_file are exclusive")
        if self.client_ca_file and self.client_ca:
            raise ValueError("client_ca and client_ca_file are exclusive")
        has_cert = bool(self.cert_file or self.cert)
        has_key = bool(self.key_file or self.key.get_secret_value())
        if has_cert != has_key:
            raise ValueError("a certificate needs its key: set both cert_file and key_file")
        has_ca = bool(self.client_ca_file or self.client_ca)
        verifying = self.client_auth_type in VERIFYING_CLIENT_AUTH
        if verifying and not has_ca:
            raise ValueError(f"client_auth_type {self.client_auth_type} needs client_ca_file")
        if has_ca and not verifying:
            raise ValueError(
                "client_ca_file is set but client_auth_type does not verify client certificates"
            )
        if self.client_allowed_sans and self.client_auth_type != "RequireAndVerifyClientCert":
            raise ValueError(
                "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert"
            )
        if TLS_VERSIONS.index(self.min_version) > TLS_VERSIONS.index(self.max_version):
            raise ValueError(f"min_version {self.min_version} is above max_version")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.cert_file or self.cert)


class Headers(Strict):
    content_security_policy: str = Field("", alias="Content-Security-Policy")
    x_frame_options: Literal["", "deny", "sameorigin"] = Field("", alias="X-Frame-Options")
    x_content_type_options: Literal["", "nosniff"] = Field("", alias="X-Content-Type-Options")
    x_xss_protection: str = Field("", alias="X-XSS-Protection")
    strict_transport_security: str = Field("", alias="Strict-Transport-Security")

    def pairs(self) -> list[tuple[str, str]]:
        fields = type(self).model_fields
        return [(fields[name].alias or name, v) for name, v in self if v]


class HttpServerConfig(Strict):
    http2: bool = True  # accepted for compatibility; drwatch serves HTTP/1.1
    headers: Headers = Headers()


# Modular crypt format: $2a$, $2b$ or $2y$, a two-digit cost 04-31, 53 characters of salt+hash.
_BCRYPT_HASH = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")


class WebConfigFile(Strict):
    tls_server_config: TlsServerConfig = TlsServerConfig()
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, SecretStr] = {}
    rate_limit: dict[str, object] = {}

    @field_validator("rate_limit")
    @classmethod
    def _no_rate_limit(cls, value: dict[str, object]) -> dict[str, object]:
        if value:
            raise ValueError("not supported: drwatch caps connections itself (64 at once)")
        return value

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in users.items():
            if not user or ":" in user:
                raise ValueError(f"user {user!r}: a basic-auth user name is non-empty, no ':'")
            value = hashed.get_secret_value()
            # Never echo the value: a plain password here is a secret.
            if not value.startswith(BCRYPT_PREFIXES) or not _BCRYPT_HASH.match(value):
                raise ValueError(
                    f"user {user!r}: not a bcrypt hash (drwatch hash-password makes one)"
                )
            try:  # what bcrypt itself cannot use is refused now, not a 500 on every request
                bcrypt.checkpw(b"", value.encode())
            except ValueError:
                raise ValueError(f"user {user!r}: a bcrypt hash bcrypt cannot use") from None
        return users
