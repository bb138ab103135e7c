"""`drwatch config validate`: every problem in a config, the checks it would run, what is off.

Every section is validated, on or off: a CI job without production secrets (every connection
string unset, every section off) still catches a misspelt key or a duration without its unit.
"""

from __future__ import annotations

import sys

from core.config.stores import BackupsConfig
from exporter.cli.load import load_or_report
from exporter.runtime.jobs import build_jobs


def _layouts(backups: BackupsConfig | None) -> list[str]:
    """How the stores will be read: the layout configured, or detected at each run."""
    if backups is None:
        return []
    out = []
    for what, url, layout in (
        ("WAL store", backups.wal_store, backups.wal_layout),
        ("base backups", backups.base_store, backups.base_layout),
    ):
        if url:
            how = "layout detected from the names at each run" if layout == "auto" else layout
            out.append(f"{what} {url}: {how}")
    return out


def validate(path: str, strict: bool, allow_missing_env: bool = False) -> int:
    """0 valid, 1 invalid (or, with `strict`, valid with a warning)."""
    loaded = load_or_report(path, allow_missing_env)
    if loaded is None:
        return 1
    jobs, _ = build_jobs(loaded.config)
    print(f"{path}: valid: {len(loaded.config.targets)} target(s), {len(jobs)} check(s)")
    for job in jobs:
        print(f"  {job.target}: {job.check} every {job.interval:g}s (deadline {job.timeout:g}s)")
    for target in loaded.config.targets:
        for line in _layouts(target.backups):
            print(f"  {target.name}: {line}")
    for off in loaded.off:
        print(f"  off: {off}")
    if loaded.missing_env:
        print(f"  not set (allowed): {', '.join(loaded.missing_env)}")
    if jobs:
        return 0
    print(
        f"{path}: warning: this config runs no check"
        + (" (every section is off)" if loaded.off else ""),
        file=sys.stderr,
    )
    return 1 if strict else 0
