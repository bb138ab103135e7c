"""The `remediation:` config section: off unless enabled, dry-run unless told otherwise.

A per-target `remediation:` block overrides the global one key by key (`merge_remediation`).
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator

from core.config.base import Strict
from core.durations import Duration

# The advisory-lock key every drwatch agrees on (b"drwatch" as a number); only the instance
# holding it on a target's PostgreSQL acts on that target.
DEFAULT_LOCK_KEY = int.from_bytes(b"drwatch", "big")


M = TypeVar("M", bound=BaseModel)
Action = Literal["terminate_idle_connections", "terminate_idle_in_transaction", "redis_bgsave"]


class _SessionFilters(Strict):
    users: list[str] = []  # allowlist of role names; empty: any
    exclude_users: list[str] = []
    applications: list[str] = []  # allowlist of application_name; empty: any
    exclude_applications: list[str] = []
    # A superuser's session is often the DBA fixing things: touching it needs saying so (and a
    # superuser drwatch role: pg_signal_backend cannot signal a superuser's backend).
    allow_superuser: bool = False


class TerminateIdleOptions(_SessionFilters):
    enabled: bool = True
    when_utilization_above: float | None = Field(0.8, gt=0, le=1)
    always: bool = False  # act whatever the utilisation
    idle_for: Duration = 600.0  # the runbook: idle for longer than 10 minutes
    max_per_run: int = Field(20, ge=1)
    cooldown: Duration = 300.0
    # Only as many as bring utilisation back under the ratio; false: every candidate up to
    # max_per_run.
    only_as_needed: bool = True

    @model_validator(mode="after")
    def _one_trigger(self) -> TerminateIdleOptions:
        if not self.always and self.when_utilization_above is None:
            raise ValueError("set when_utilization_above or always: true")
        return self


class TerminateIdleInTransactionOptions(_SessionFilters):
    enabled: bool = True
    idle_for: Duration = 900.0
    max_per_run: int = Field(5, ge=1)
    cooldown: Duration = 300.0


class RedisBgsaveOptions(Strict):
    enabled: bool = True
    cooldown: Duration = 1800.0


class RemediationActions(Strict):
    terminate_idle_connections: TerminateIdleOptions | None = None
    terminate_idle_in_transaction: TerminateIdleInTransactionOptions | None = None
    redis_bgsave: RedisBgsaveOptions | None = None


class RemediationOverride(Strict):
    """What a target's own `remediation:` may set."""

    enabled: bool = False
    dry_run: bool = True
    # While this file exists nothing is executed; SIGUSR1 engages the same switch, SIGUSR2
    # releases it. (Not `*_file`: that suffix means "read the value from this file".)
    kill_switch_path: str | None = None
    lock_key: int = Field(DEFAULT_LOCK_KEY, ge=-(2**63), lt=2**63)
    actions: RemediationActions = RemediationActions()


class WebhookConfig(Strict):
    """Alertmanager's webhook as a trigger: POST /webhook/alertmanager maps alert names to
    actions; the alert replaces the action's own trigger, every other rule still applies."""

    # Alertmanager sends it as `Authorization: Bearer ...` (http_config.authorization).
    token: str = Field(min_length=16, repr=False)  # or token_file
    alerts: dict[str, Action] = Field(min_length=1)  # alertname -> action

    @field_validator("token")
    @classmethod
    def _visible_ascii(cls, v: str) -> str:
        # HTTP headers carry bytes; anything else could never match what a client sends.
        if not all("!" <= c <= "~" for c in v):
            raise ValueError("use visible ASCII characters only (no spaces, no accents)")
        return v


class RemediationConfig(RemediationOverride):
    webhook: WebhookConfig | None = None  # global only: one daemon, one endpoint


def merge_remediation(base: M, override: BaseModel) -> M:
    """`override`'s explicitly written keys over `base`, recursively."""
    update: dict[str, object] = {}
    for key in override.model_fields_set:
        below, value = getattr(base, key), getattr(override, key)
        if isinstance(below, BaseModel) and isinstance(value, BaseModel):
            update[key] = merge_remediation(below, value)
        else:
            update[key] = value
    return base.model_copy(update=update)
