"""`drwatch hash-password`: a bcrypt hash for --web.config.file's basic_auth_users, without
htpasswd (which nothing here installs). The password comes from standard input (one line) or,
at a terminal, is asked twice; never from the command line, where `ps` would show it."""

from __future__ import annotations

import getpass
import sys

import bcrypt

from exporter.web.basicauth import MAX_PASSWORD_BYTES

COST = 10  # what `htpasswd -nBC 10` makes: tens of milliseconds per check, cached once verified


def hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if not password:
        print("an empty password", file=sys.stderr)
        return 1
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        print(
            f"longer than bcrypt's {MAX_PASSWORD_BYTES} bytes: no client could log in",
            file=sys.stderr,
        )
        return 1
    print(bcrypt.hashpw(password.encode(), bcrypt.gensalt(COST)).decode())
    return 0
