"""pgBackRest's encrypted repositories (`repo1-cipher-type=aes-256-cbc`): their info files.

pgBackRest encrypts as `openssl enc` does: `Salted__`, an 8-byte salt, then AES-256-CBC with
PKCS#7 padding, the key and IV derived from the passphrase with OpenSSL's EVP_BytesToKey (SHA-1,
one round) — src/common/crypto/cipherBlock.c; checked against a repository the Debian package
wrote (tests/test_catalogues_real.py). Only the info files drwatch reads are decrypted, with the
repository's passphrase (`backups.pgbackrest_cipher_pass`, a secret like every other).
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

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
