"""Keeps secrets out of every text drwatch emits: logs, errors, summaries, pages."""

from __future__ import annotations

import re
import threading

MASK = "***"

# The whole userinfo of a URL (up to its last '@' before the path), and password=... in libpq
# keyword/value strings.
_URL_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s]*(?P<tail>@)")
_KV_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class Redactor:
    """Replaces known secret values and password-looking fragments with a mask."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def set_secrets(self, secrets: set[str]) -> None:
        # Very short values would mask unrelated text ("a", "1"); patterns still cover them in DSNs.
        with self._lock:
            self._secrets = frozenset(s for s in secrets if len(s) >= 4)

    def __call__(self, text: str) -> str:
        text = _URL_USERINFO.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)
        text = _KV_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


redact = Redactor()
