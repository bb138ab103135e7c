"""What remediation decides: one Decision per action and session, with what an audit needs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from core.config.remediation import Action

Outcome = Literal["planned", "executed", "dry_run", "skipped", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("executed", "dry_run", "skipped", "failed")


@dataclass(frozen=True)
class Session:
    """A client session as pg_stat_activity showed it when the decision was made."""

    pid: int
    user: str
    application: str
    client_addr: str
    state: str
    state_change: datetime
    idle_seconds: float
    superuser: bool


@dataclass(frozen=True)
class Decision:
    target: str
    action: Action
    outcome: Outcome
    reason: str
    session: Session | None = None
    trigger: str = ""  # what set the action off: a measurement, `always`, or an alert

    def audit_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "reason": self.reason,
            "trigger": self.trigger,
        }
        s = self.session
        if s is not None:
            fields.update(
                pid=s.pid,
                user=s.user,
                application=s.application,
                client_addr=s.client_addr,
                state=s.state,
                idle_seconds=round(s.idle_seconds, 1),
            )
        return fields
