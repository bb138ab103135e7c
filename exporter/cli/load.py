"""Loading the config for a command: every problem printed, secrets masked."""

from __future__ import annotations

import sys

from core.config.loading import LoadedConfig, load_config
from core.errors import ConfigError
from core.redact import redact


def load_or_report(path: str, allow_missing_env: bool = False) -> LoadedConfig | None:
    """The config, or None after printing every problem in it to stderr."""
    try:
        return load_config(path, allow_missing_env)
    except ConfigError as exc:
        print(f"{path}: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return None
