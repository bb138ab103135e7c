"""Secrets never reach a log line, an error, a metric or a page."""

from __future__ import annotations

from core.redact import MASK, Redactor


def test_passwords_in_urls_and_keyword_strings_are_masked() -> None:
    redact = Redactor()
    assert (
        redact("postgresql://app:hunter22@db:5432/x failed")
        == f"postgresql://{MASK}@db:5432/x failed"
    )
    assert redact("redis://:s3cret@cache:6379/0") == f"redis://{MASK}@cache:6379/0"
    # An unescaped '@' in a password: the whole userinfo goes, up to the host.
    assert redact("postgresql://u:Pw@Tail-7@h/db") == f"postgresql://{MASK}@h/db"
    assert redact("see https://example.org/a@b") == "see https://example.org/a@b"
    assert (
        redact(r"host=db password='it\'s a secret' user=app") == f"host=db password={MASK} user=app"
    )
    assert redact("host=db PASSWORD=plain user=app") == f"host=db PASSWORD={MASK} user=app"


def test_known_secrets_are_masked_wherever_they_appear() -> None:
    redact = Redactor()
    redact.set_secrets({"webhook-token-0123456789", "abc"})
    assert redact("bad token webhook-token-0123456789 seen") == f"bad token {MASK} seen"
    # Values this short would mask unrelated text; URLs and key=value strings still cover them.
    assert redact("abc and abcdef") == "abc and abcdef"
    redact.set_secrets(set())
    assert redact("webhook-token-0123456789") == "webhook-token-0123456789"


def test_a_pgbackrest_cipher_pass_given_inline_is_a_secret() -> None:
    from tests.helpers import make_config

    target = {"name": "db", "backups": {"base_store": "file:///x/",
              "pgbackrest_cipher_pass": "correct horse battery"}}  # fmt: skip
    assert "correct horse battery" in make_config([target]).secrets


def test_the_replica_stores_own_secret_key_is_a_secret() -> None:
    from tests.helpers import make_config

    target = {"name": "db", "backups": {
        "store": "file:///x/", "replica_store": "s3://other-region/dumps/",
        "replica_aws": {"access_key_id": "AKIAOTHER", "secret_access_key": "other-region-key"}}}  # fmt: skip
    assert "other-region-key" in make_config([target]).secrets
