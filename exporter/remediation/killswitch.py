"""The remediation kill switch: SIGUSR1 engages it, SIGUSR2 releases it, and a file engages it
while it exists."""

from __future__ import annotations

from pathlib import Path

from core.config.remediation import RemediationConfig


class KillSwitch:
    """Engaged by SIGUSR1 (released by SIGUSR2) or while the configured file exists."""

    def __init__(self) -> None:
        self.engaged_by_signal = False

    def engage(self) -> None:
        self.engaged_by_signal = True

    def release(self) -> None:
        self.engaged_by_signal = False

    def why(self, rc: RemediationConfig) -> str | None:
        if self.engaged_by_signal:
            return "kill switch engaged (SIGUSR1; SIGUSR2 releases it)"
        if rc.kill_switch_path and Path(rc.kill_switch_path).exists():
            return f"kill switch engaged ({rc.kill_switch_path} exists)"
        return None
