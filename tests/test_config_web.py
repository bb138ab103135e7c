"""The web config file's schema: every mistake named by its key, nothing secret echoed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.errors import ConfigError
from exporter.web.security import load_web_config
from tests.pki import bcrypt_hash

CERT = {"cert_file": "server.crt", "key_file": "server.key"}


def _problems(tmp_path: Path, config: object) -> str:
    file = tmp_path / "web.yml"
    file.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as exc:
        load_web_config(file)
    assert all(p.startswith(f"web config {file}: ") for p in exc.value.problems)
    return str(exc.value)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"tls_server_config": {"cert_file": "a.crt"}}, "set both cert_file and key_file"),
        ({"tls_server_config": {**CERT, "min_version": "SSL3"}}, "tls_server_config.min_version"),
        (
            {"tls_server_config": {**CERT, "min_version": "TLS13", "max_version": "TLS12"}},
            "min_version TLS13 is above max_version",
        ),
        (
            {"tls_server_config": {**CERT, "client_auth_type": "RequireAnyClientCert"}},
            "RequireAnyClientCert is not supported",
        ),
        (
            {"tls_server_config": {**CERT, "client_auth_type": "Always"}},
            "unknown client_auth_type 'Always'",
        ),
        (
            {"tls_server_config": {**CERT, "client_auth_type": "RequireAndVerifyClientCert"}},
            "needs client_ca_file",
        ),
        (
            {"tls_server_config": {**CERT, "client_ca_file": "ca.crt"}},
            "client_auth_type does not verify client certificates",
        ),
        (
            {"tls_server_config": {**CERT, "client_allowed_sans": ["prometheus"]}},
            "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert",
        ),
        (
            {"tls_server_config": {**CERT, "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
            "tls_server_config.cipher_suites: not supported",
        ),
        (
            {"tls_server_config": {**CERT, "certfile": "x"}},
            "tls_server_config.certfile: unknown key",
        ),
        (
            {"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
            "http_server_config.headers.X-Frame-Options",
        ),
        ({"rate_limit": {"interval": "1s", "burst": 5}}, "rate_limit: not supported"),
        ({"basic_auth_users": {"prom": "hunter2"}}, "user 'prom': not a bcrypt hash"),
        ({"basic_auth_users": ["prom"]}, "basic_auth_users"),
        ({"basic_auth": {}}, "basic_auth: unknown key"),
    ],
)
def test_each_mistake_is_named(tmp_path: Path, config: object, expected: str) -> None:
    message = _problems(tmp_path, config)
    assert expected in message
    assert "hunter2" not in message


def test_not_yaml(tmp_path: Path) -> None:
    file = tmp_path / "web.yml"
    file.write_text("basic_auth_users: {prom: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_web_config(file)


def test_an_empty_file_changes_nothing(tmp_path: Path) -> None:
    file = tmp_path / "web.yml"
    file.write_text("")
    settings = load_web_config(file)
    assert settings.tls is None and settings.users == {} and settings.headers == []


def test_users_and_headers(tmp_path: Path) -> None:
    file = tmp_path / "web.yml"
    hashed = bcrypt_hash("pw")
    file.write_text(
        yaml.safe_dump(
            {
                "basic_auth_users": {"prom": hashed},
                "http_server_config": {"http2": False, "headers": {"X-Frame-Options": "deny"}},
            }
        )
    )
    settings = load_web_config(file)
    assert settings.users == {"prom": hashed.encode()}
    assert settings.headers == [("X-Frame-Options", "deny")]
