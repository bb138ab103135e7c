"""The evidence report, signed: an in-toto Statement whose subject is the report's JSON (its
SHA-256) and whose predicate is the report itself, in a DSSE envelope signed with Ed25519
(`cryptography`). `cosign verify-blob-attestation --key pub.pem --type <PREDICATE_TYPE>
--signature report.json.intoto.jsonl report.json` accepts it; `drwatch report verify` checks it
without cosign.

DSSE (github.com/secure-systems-lab/dsse, protocol.md): the signature is over
PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import DrwatchError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://drwatch.dev/evidence-report/v1"
SUFFIX = ".intoto.jsonl"  # the attestation beside the report, as cosign names them


class SigningError(DrwatchError):
    """A key that cannot sign or verify, or an envelope that does not verify: said by name."""


def pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def keyid(public: Ed25519PublicKey) -> str:
    """The key's id: the SHA-256 of its raw public bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def _private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not an unencrypted PEM private key"
        raise SigningError(f"--sign {path}: {reason}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningError(
            f"--sign {path}: not an Ed25519 key (openssl genpkey -algorithm ed25519)"
        )
    return key


def _public(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
        key = (serialization.load_pem_private_key(data, None).public_key()
               if b"PRIVATE KEY" in data else serialization.load_pem_public_key(data))  # fmt: skip
    except (OSError, ValueError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not a PEM public key"
        raise SigningError(f"--key {path}: {reason}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError(f"--key {path}: not an Ed25519 key")
    return key


def envelope(report: bytes, name: str, key_path: Path) -> dict[str, Any]:
    """The DSSE envelope of an in-toto Statement about `report` (the JSON as written, `name`)."""
    key = _private(key_path)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": hashlib.sha256(report).hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": json.loads(report),
    }
    body = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(pae(PAYLOAD_TYPE, body))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode(),
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(signature).decode()}
        ],
    }


def verify(envelope_path: Path, report_path: Path, key_path: Path) -> str:
    """What the envelope proves of the report, or SigningError saying why it does not."""
    key = _public(key_path)
    try:
        doc = json.loads(envelope_path.read_bytes())
        body = base64.b64decode(doc["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in doc["signatures"]]
        payload_type = str(doc["payloadType"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"{envelope_path}: not a DSSE envelope ({type(exc).__name__})") from None
    if payload_type != PAYLOAD_TYPE:
        raise SigningError(f"{envelope_path}: payloadType {payload_type!r}, not in-toto")
    if not any(_valid(key, sig, pae(payload_type, body)) for sig in signatures):
        raise SigningError(f"{envelope_path}: no signature by this key verifies")
    statement = json.loads(body)
    try:
        report = report_path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{report_path}: {exc.strerror}") from None
    digest = hashlib.sha256(report).hexdigest()
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject", [])]
    if statement.get("predicateType") != PREDICATE_TYPE or digest not in subjects:
        raise SigningError(f"{report_path}: changed since it was signed (sha256 {digest})")
    generated = statement.get("predicate", {}).get("generated_at", "?")
    return f"{report_path}: signed by key {keyid(key)[:16]}..., generated {generated}"


def _valid(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
