"""`drwatch config validate`: every problem in a config, the checks it would run, what is off.

Every section is validated, on or off: a CI job without production secrets (every connection
string unset, every section off) still catches a misspelt key or a duration without its unit.
"""

from __future__ import annotations

import sys

from exporter.cli.load import load_or_report
from exporter.runtime.jobs import build_jobs


def validate(path: str, strict: bool) -> int:
    """0 valid, 1 invalid (or, with `strict`, valid with a warning)."""
    loaded = load_or_report(path)
    if loaded is None:
        return 1
    jobs, _ = build_jobs(loaded.config)
    print(f"{path}: valid: {len(loaded.config.targets)} target(s), {len(jobs)} check(s)")
    for job in jobs:
        print(f"  {job.target}: {job.check} every {job.interval:g}s (deadline {job.timeout:g}s)")
    for off in loaded.off:
        print(f"  off: {off}")
    if jobs:
        return 0
    print(
        f"{path}: warning: this config runs no check"
        + (" (every section is off)" if loaded.off else ""),
        file=sys.stderr,
    )
    return 1 if strict else 0
