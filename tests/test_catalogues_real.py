"""An encrypted pgBackRest repository written by the real pgBackRest (repo1-cipher-type
aes-256-cbc): read with its passphrase given as a secret file, refused by name without it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.base import Status
from sandbox.pgcluster import PgCluster
from tests.backup_tools import PgBackRest
from tests.helpers import CheckHarness, make_config, sample

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="module")
def encrypted() -> Iterator[PgBackRest]:
    cluster = PgCluster()
    tool = PgBackRest(cluster)
    tool.conf.write_text(
        tool.conf.read_text().replace(
            "[global]\n",
            f"[global]\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass={PASSPHRASE}\n",
        )
    )
    cluster.init(tool.archive_command).start()
    try:
        tool.run("stanza-create")
        tool.run("backup", "--type=full")
        yield tool
    finally:
        cluster.destroy()


def _run(tool: PgBackRest, tmp_path: Path, **backups: object):  # type: ignore[no-untyped-def]
    target = {
        "name": "db",
        "postgres": {"dsn": tool.cluster.dsn()},
        "backups": {"base_store": f"file://{tool.repo}/backup/main/", "retention": "1s",
                    **backups},
    }  # fmt: skip
    return CheckHarness(make_config([target], state_dir=str(tmp_path / "state"))).run(
        "base_backups"
    )


def test_an_encrypted_repository_needs_its_passphrase_by_name(
    encrypted: PgBackRest, tmp_path: Path
) -> None:
    assert (encrypted.repo / "backup/main/backup.info").read_bytes().startswith(b"Salted__")
    result = _run(encrypted, tmp_path)
    assert not result.up
    assert "backup.info is encrypted (the repository has repo-cipher-type set)" in result.summary
    assert "backups.pgbackrest_cipher_pass" in result.summary
    assert "internal error" not in result.summary


def test_an_encrypted_repository_is_read_with_its_passphrase(
    encrypted: PgBackRest, tmp_path: Path
) -> None:
    secret = tmp_path / "cipher-pass"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)
    result = _run(encrypted, tmp_path, pgbackrest_cipher_pass_file=str(secret))
    assert result.status == Status.OK, result.summary
    assert sample(result, "drwatch_base_backups", type="full") == 1
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    wrong.chmod(0o600)
    refused = _run(encrypted, tmp_path, pgbackrest_cipher_pass_file=str(wrong))
    assert not refused.up and "the passphrase does not open it" in refused.summary
    assert PASSPHRASE not in refused.summary and "not it" not in refused.summary
