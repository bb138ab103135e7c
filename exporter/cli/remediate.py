"""`drwatch remediate`: what the remediation engine would do now, as a table; `--execute` acts."""

from __future__ import annotations

import sys

from core.redact import redact
from exporter.cli.load import load_or_report
from exporter.cli.table import columns
from exporter.remediation.decision import Decision
from exporter.remediation.engine import REMEDIATION_INPUTS, RemediationEngine
from exporter.runtime.oneshot import run_once

_HEADER = ("TARGET", "ACTION", "OUTCOME", "PID", "USER", "APPLICATION", "CLIENT", "IDLE", "REASON")


def _row(d: Decision) -> tuple[str, ...]:
    s = d.session
    if s is None:
        return (d.target, d.action, d.outcome, "", "", "", "", "", d.reason)
    return (
        d.target,
        d.action,
        d.outcome,
        str(s.pid),
        s.user,
        s.application,
        s.client_addr,
        f"{s.idle_seconds:.0f}s",
        d.reason,
    )


def table(decisions: list[Decision]) -> str:
    return "\n".join(columns([_HEADER, *(_row(d) for d in decisions)]))


def remediate(path: str, target_name: str | None, execute: bool) -> int:
    """Exit 0 when everything decided went as decided, 1 if anything failed or could not act,
    2 for a config that does not allow what was asked."""
    from exporter.logs import setup_logging

    setup_logging("warning")
    loaded = load_or_report(path)
    if loaded is None:
        return 2
    config = loaded.config
    redact.set_secrets(loaded.secrets)
    targets = [t for t in config.targets if target_name in (None, t.name)]
    if not targets:
        print(f"--target {target_name!r}: no such target in {path}", file=sys.stderr)
        return 2
    if execute:
        off = [t.name for t in targets if not config.remediation_for(t).enabled]
        if off:
            print(
                f"--execute: remediation is not enabled for {', '.join(off)} "
                "(set remediation.enabled: true)",
                file=sys.stderr,
            )
            return 2
    engine = RemediationEngine()
    decisions: list[Decision] = []
    status = 0
    try:
        for target in targets:
            _, results = run_once(loaded, target.name, REMEDIATION_INPUTS)
            by_check = {r.check: r for r in results}
            for r in results:
                if not r.up:
                    print(f"{target.name}: {r.check} is down: {r.summary}", file=sys.stderr)
                    status = 1
            if execute:
                decisions += engine.run(config, target, by_check, execute=True, explain=True)
                if engine.is_leader(target.name) is False:
                    print(
                        f"{target.name}: another drwatch holds the remediation lock; nothing done",
                        file=sys.stderr,
                    )
                    status = 1
            else:
                if not config.remediation_for(target).enabled:
                    print(
                        f"{target.name}: remediation is off in the config; showing what it "
                        "would do if enabled",
                        file=sys.stderr,
                    )
                decisions += engine.run(config, target, by_check, preview=True, explain=True)
    finally:
        engine.close()
    print(table(decisions) if decisions else "nothing to do")
    if any(d.outcome == "failed" for d in decisions):
        status = 1
    return status
