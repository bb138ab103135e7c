"""pgBackRest: its repository, catalogue, WAL archive, encryption and its own restore.

- Layout: `backup/<stanza>/backup.info` (and `.copy`: every info file is written twice), a
  directory per set named by its label (`20240101-010101F`, `..._20240102-010101D|I`), and
  `archive/<stanza>/<pg-version>-<id>/<timeline+log>/<name>-<sha1>[.gz|.lz4|.zst|.bz2]`,
  `.history` files beside the timeline+log directories, `.backup` files with or without the
  hash; after a stanza upgrade older archive ids stay beside the current one, the highest id.
- `backup.info` (INI, `[backup:current]` values are JSON): `backup-type` (full, diff, incr),
  `backup-prior` (the set a diff or incr needs), `backup-timestamp-start`/`-stop`,
  `backup-info-size`, `backup-archive-start`, `backup-error` (page checksum errors; pgBackRest
  has exited 0 while reporting `status: error`, pgbackrest#2502). A set appears there only once
  complete; a label directory it does not list yet is a backup under way (its
  `backup.manifest.copy` is saved when it starts).
- Encrypted repositories (`repo1-cipher-type=aes-256-cbc`): pgBackRest encrypts as `openssl enc`
  does: `Salted__`, an 8-byte salt, then AES-256-CBC with PKCS#7 padding, the key and IV derived
  from the passphrase with OpenSSL's EVP_BytesToKey (SHA-1, one round) —
  src/common/crypto/cipherBlock.c; checked against a repository the Debian package wrote
  (tests/test_catalogues_real.py). Only the info files drwatch reads are decrypted, with the
  repository's passphrase (`backups.pgbackrest_cipher_pass`, a secret like every other).
- Its own restore: `pgbackrest restore --set=<label>` of the newest set that is a recovery point
  (`pgbackrest info --output=json`), WAL fetched by `pgbackrest archive-get %f "%p"`.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import posixpath
import re
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from checks.backup_tools.base import (
    BackupTool,
    BadEntry,
    BaseBackup,
    CatalogueRead,
    Claim,
    RestoreSource,
    ToolRestore,
    by_top,
    read_bounded,
    running_since,
)
from checks.support.stores import StoredObject
from checks.support.walnames import strip_compression
from core.errors import CheckError
from core.programs import PGBACKREST

MAGIC = b"Salted__"
_KEY, _IV, _SALT = 32, 16, 8


class CipherError(ValueError):
    """The passphrase does not open the file (a wrong passphrase or a damaged file)."""


def encrypted(data: bytes) -> bool:
    return data.startswith(MAGIC)


def _key_and_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    derived, block = b"", b""
    while len(derived) < _KEY + _IV:
        block = hashlib.sha1(block + passphrase + salt).digest()  # noqa: S324 (OpenSSL's KDF)
        derived += block
    return derived[:_KEY], derived[_KEY : _KEY + _IV]


def decrypt(data: bytes, passphrase: str) -> bytes:
    if not encrypted(data) or len(data) < len(MAGIC) + _SALT + 16:
        raise CipherError("not an encrypted pgBackRest file")
    salt = data[len(MAGIC) : len(MAGIC) + _SALT]
    key, iv = _key_and_iv(passphrase.encode(), salt)
    body = data[len(MAGIC) + _SALT :]
    if len(body) % 16:
        raise CipherError("truncated")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(body) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise CipherError("the passphrase does not open it") from None


def backups(text: str, key: str) -> list[BaseBackup]:
    """Every set `backup.info`'s `[backup:current]` lists (a set it cannot read: one failed
    backup, named)."""
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # labels keep their case
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise BadEntry(f"not a pgBackRest info file ({type(exc).__name__})") from None
    if not parser.has_section("backup:current"):
        return []
    out = []
    for label, raw in parser.items("backup:current"):
        try:
            fields = json.loads(raw)
            out.append(
                BaseBackup(
                    label=label,
                    kind=str(fields["backup-type"]),
                    started=float(fields["backup-timestamp-start"]),
                    stopped=float(fields["backup-timestamp-stop"]),
                    size=int(fields["backup-info-size"]),
                    wal_start=fields.get("backup-archive-start"),
                    error="page checksum errors found" if fields.get("backup-error") else None,
                    parent=fields.get("backup-prior") or None,
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            why = f"{key}: backup set {label}: {type(exc).__name__} {exc}"
            out.append(BaseBackup(label, "unknown", 0.0, 0.0, 0, None, f"unreadable: {why}"))
    return out


def _catalogue(read: CatalogueRead) -> list[BaseBackup]:
    store = read.store
    infos = [o for o in read.objects if posixpath.basename(o.key) == "backup.info"]
    if len(infos) != 1:
        raise CheckError(
            "config",
            f"{len(infos)} pgBackRest backup.info files: point base_store at one stanza's "
            "backup/<stanza>/ directory",
        )
    key = infos[0].key
    data = read_bounded(store, key)
    if encrypted(data):
        if not read.cipher_pass:
            raise CheckError(
                "config",
                f"{store.url}{key} is encrypted (the repository has repo-cipher-type set): give "
                "its repo-cipher-pass as backups.pgbackrest_cipher_pass (or _file)",
            )
        try:
            data = decrypt(data, read.cipher_pass)
            if not data.startswith(b"[backrest]"):  # a wrong key can still unpad (1 in 256)
                raise CipherError("the passphrase does not open it")
        except CipherError as exc:
            raise CheckError("config", f"{key}: backups.pgbackrest_cipher_pass: {exc}") from None
    try:
        return backups(data.decode("utf-8"), key)
    except (BadEntry, UnicodeDecodeError) as exc:
        raise CheckError("query", f"{key}: {exc}") from None


_LABEL = re.compile(r"^(\d{8}-\d{6})F(?:_(\d{8}-\d{6})[DI])?$")


def _running(objects: list[StoredObject], listed: set[str]) -> list[BaseBackup]:
    """Label directories `backup.info` does not list yet: running since the time in the label."""
    out = []
    for label, files in by_top(objects).items():
        match = _LABEL.match(label)
        if match and label not in listed:
            stamp = match[2] or match[1]
            when = datetime.strptime(stamp, "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()
            out.append(running_since(label, files, when))
    return out


_HASH = re.compile(r"-[0-9a-f]{40}$")  # the SHA-1 of the segment's content
_ARCHIVE_ID = re.compile(r"(?:^|/)(\d+(?:\.\d+)?)-(\d+)/")


def _writes_wal(key: str) -> bool:
    return "-" in key and _HASH.search(strip_compression(key)) is not None


def _wal_files(objects: list[StoredObject]) -> list[StoredObject]:
    """The current archive id's files only (an older one is another PostgreSQL version's
    history): a few hundred directories for 100,000 keys, the id read once for each."""
    directories = {obj.key.rpartition("/")[0] + "/" for obj in objects}
    ids = {d: f"{m[1]}-{m[2]}" for d in directories if (m := _ARCHIVE_ID.search(d))}
    if len(set(ids.values())) <= 1:
        return objects
    current = max(ids.values(), key=lambda archive_id: int(archive_id.rpartition("-")[2]))
    return [o for o in objects if ids.get(o.key.rpartition("/")[0] + "/") == current]


def _catalogue_file(key: str) -> Claim:
    # every info file written twice: the copy is pgBackRest's alone
    return "yes" if posixpath.basename(key) == "backup.info.copy" else "no"


def _tool(source: RestoreSource, data: str) -> list[str]:
    return [
        RESTORE.path(),
        f"--config={source.config}",
        f"--stanza={source.stanza}",
        f"--pg1-path={data}",  # archive-get insists it is the server's directory
        "--lock-path=/tmp",  # the sandbox's own
        "--log-level-file=off",  # its console says why
    ]


def info_command(source: RestoreSource) -> list[str]:
    """`pgbackrest info --output=json` of the stanza (info takes no pg-path)."""
    return [*(a for a in _tool(source, "") if not a.startswith("--pg1-path=")), "--output=json",
            "info"]  # fmt: skip


def _restore(source: RestoreSource, label: str, data: str) -> list[str]:
    return [*_tool(source, data), f"--set={label}", "--type=none", "--archive-mode=off", "restore"]


def _wal(source: RestoreSource, data: str) -> str:
    return " ".join([*_tool(source, data), "archive-get", "%f", '"%p"'])


def posix_repositories(config: str) -> list[Path]:
    """The local repositories a pgBackRest config names (`repoN-path` of a posix repository):
    what its restore and archive-get read."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(config)
    except (OSError, configparser.Error) as exc:
        raise ValueError(f"{config}: {exc}") from None
    found: list[Path] = []
    for section in parser.sections():
        options = parser[section]
        for key, value in options.items():
            if match := re.fullmatch(r"repo(\d+)-path", key):
                kind = options.get(f"repo{match[1]}-type", "posix")
                if kind == "posix" and value.startswith("/") and Path(value).exists():
                    found.append(Path(value))
    return found


def recovery_set(info: str, stanza: str) -> tuple[str, list[str]]:
    """The newest backup set `pgbackrest info --output=json` shows as a recovery point (no
    `error`: page checksum errors at backup time; nor in a set it references), and the newer
    sets passed over, each with why. ValueError when there is none."""
    try:
        stanzas = json.loads(info)
        sets = next(s for s in stanzas if s.get("name") == stanza).get("backup", [])
    except (ValueError, StopIteration, AttributeError, TypeError):
        raise ValueError(f"pgbackrest info: no stanza {stanza!r} it can read") from None
    errored = {str(b.get("label")) for b in sets if b.get("error")}
    passed_over: list[str] = []
    for backup in reversed(sets):
        label = str(backup.get("label"))
        bad = ({label} | set(backup.get("reference") or [])) & errored
        if not bad:
            return label, passed_over
        passed_over.append(
            f"{label} (backup-error: page checksum errors at backup time"
            + (f", in {', '.join(sorted(bad - {label}))} it builds on)" if bad - {label} else ")")
        )
    raise ValueError(
        f"no pgBackRest set of stanza {stanza} is a recovery point: "
        + ("; ".join(passed_over) or "none in its repository")
    )


RESTORE = ToolRestore(program=PGBACKREST, base=_restore, wal=_wal)
TOOL = BackupTool(
    name="pgbackrest",
    title="pgBackRest",
    layout="pgbackrest",
    writes_wal=_writes_wal,
    wal_files=_wal_files,
    catalogue_file=_catalogue_file,
    catalogue=_catalogue,
    running=_running,
    restore=RESTORE,
)
