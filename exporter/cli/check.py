"""`drwatch check`: every configured check once, as a table or JSON, with a Nagios exit code."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from checks.base import Status, worst
from core.config.loading import LoadedConfig
from core.redact import redact
from exporter.cli.load import load_or_report
from exporter.cli.table import columns
from exporter.runtime.exposure_record import compliance_30d
from exporter.runtime.exposures import exposure_rows, json_number
from exporter.runtime.results import CheckResult
from exporter.runtime.runner import Job


def overall(results: list[CheckResult]) -> Status:
    return worst([r.status for r in results])


def as_json(
    loaded: LoadedConfig,
    jobs: list[Job],
    results: list[CheckResult],
    compliance: dict[str, Any] | None = None,
) -> str:
    doc = {
        "status": overall(results).name,
        "results": [
            {
                "target": r.target,
                "check": r.check,
                "status": r.status.name,
                "summary": r.summary,
                "values": {
                    k: json_number(v) if isinstance(v, float) else v for k, v in r.values.items()
                },
            }
            for r in results
        ],
        "exposures": exposure_rows(loaded.config, jobs, {r.key: r for r in results}, compliance),
        "off": [str(off) for off in loaded.off],
    }
    return json.dumps(doc, indent=2)


def as_table(loaded: LoadedConfig, results: list[CheckResult]) -> str:
    header = ("TARGET", "CHECK", "STATUS", "SUMMARY")
    rows = [(r.target, r.check, r.status.name, r.summary) for r in results]
    lines = columns([header, *rows])
    lines += [f"off: {off}" for off in loaded.off]
    if not rows:
        lines.append("no check is configured")
    return "\n".join(lines)


def check(
    path: str, fmt: str, target: str | None, full_sweep: bool = False, timeout: float = 50.0
) -> int:
    from exporter.logs import setup_logging
    from exporter.runtime.oneshot import run_once

    setup_logging("error")
    loaded = load_or_report(path)
    if loaded is None:
        return int(Status.UNKNOWN)
    if target is not None and target not in {t.name for t in loaded.config.targets}:
        print(f"--target {target!r}: no such target in {path}", file=sys.stderr)
        return int(Status.UNKNOWN)
    redact.set_secrets(loaded.secrets)
    # The daemon's record of the last 30 days, where it shares this state_dir.
    compliance = compliance_30d(loaded.config.state_dir, loaded.config.drills.history_keep)
    loaded = _with_writable_state_dir(loaded)
    if full_sweep:  # what verification kept is forgotten: everything is read again
        for t in loaded.config.targets:
            if target in (None, t.name):
                (Path(loaded.config.state_dir) / f"verification-{t.name}.json").unlink(
                    missing_ok=True
                )
    jobs, results = run_once(loaded, target, deadline=time.monotonic() + timeout)
    text = (
        as_json(loaded, jobs, results, compliance) if fmt == "json" else as_table(loaded, results)
    )
    print(text)
    return int(overall(results))


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK)


def _with_writable_state_dir(loaded: LoadedConfig) -> LoadedConfig:
    """The one-shot keeps integrity verdicts (and what verification read) in state_dir, like the
    daemon; where it cannot
    write there, in the user's cache directory. It says where on stderr, and never fails for it."""
    config = loaded.config
    if not any(
        t.backups
        or (t.redis and t.redis.snapshot_store)
        or (t.postgres and not t.postgres.verification.is_empty())
        for t in config.targets
    ):
        return loaded  # no check keeps verdicts or verification state
    state = Path(config.state_dir)
    if _writable(state):
        print(f"drwatch check: integrity verdicts cached in {state}", file=sys.stderr)
        return loaded
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "drwatch"
    if _writable(cache):
        print(
            f"drwatch check: {state} is not writable: integrity verdicts cached in {cache}",
            file=sys.stderr,
        )
        return replace(loaded, config=config.model_copy(update={"state_dir": str(cache)}))
    print(
        f"drwatch check: neither {state} nor {cache} is writable: integrity verdicts are kept "
        "for this run only",
        file=sys.stderr,
    )
    return loaded
