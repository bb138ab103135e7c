"""Loading the config for a command: every problem printed, secrets masked."""

from __future__ import annotations

import sys

from core.config.loading import LoadedConfig, load_config
from core.errors import ConfigError
from core.redact import redact


def load_or_report(path: str) -> LoadedConfig | None:
    """The config, or None after printing every problem in it to stderr."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"{path}: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return None
