"""The `remediation:` section: safe defaults, per-target overrides, one test per config error."""

from __future__ import annotations

import pytest
import yaml

from core.config.loading import parse_config
from core.errors import ConfigError
from tests.helpers import config_problems

DSN = "postgresql://drwatch@127.0.0.1:5999/app"


def _load(remediation: object, target_remediation: object = None):  # type: ignore[no-untyped-def]
    target: dict[str, object] = {"name": "db", "postgres": {"dsn": DSN}}
    if target_remediation is not None:
        target["remediation"] = target_remediation
    doc = {"targets": [target], "remediation": remediation}
    return parse_config(yaml.safe_dump(doc), env={})


def _problems(remediation: object, target_remediation: object = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _load(remediation, target_remediation)
    return info.value.problems


def test_off_and_dry_run_unless_said_otherwise() -> None:
    config = parse_config(yaml.safe_dump({"targets": [{"name": "db"}]}), env={}).config
    rc = config.remediation_for(config.targets[0])
    assert rc.enabled is False and rc.dry_run is True
    assert rc.actions.terminate_idle_connections is None
    enabled = _load({"enabled": True, "actions": {"terminate_idle_connections": {}}}).config
    idle = enabled.remediation_for(enabled.targets[0]).actions.terminate_idle_connections
    assert enabled.remediation_for(enabled.targets[0]).dry_run is True
    assert idle is not None
    assert (idle.when_utilization_above, idle.idle_for, idle.max_per_run, idle.cooldown) == (
        0.8,
        600,
        20,
        300,
    )
    assert idle.allow_superuser is False and idle.only_as_needed is True


def test_the_design_sketch_validates() -> None:
    sketch = {
        "enabled": False,
        "dry_run": True,
        "actions": {
            "terminate_idle_connections": {
                "when_utilization_above": 0.8,
                "idle_for": "10m",
                "max_per_run": 20,
                "cooldown": "5m",
                "users": [],
                "exclude_users": [],
                "applications": [],
                "exclude_applications": [],
            },
            "terminate_idle_in_transaction": {
                "idle_for": "15m",
                "max_per_run": 5,
                "cooldown": "5m",
            },
            "redis_bgsave": {"cooldown": "30m"},
        },
    }
    actions = _load(sketch).config.remediation.actions
    assert actions.terminate_idle_in_transaction is not None
    assert actions.terminate_idle_in_transaction.idle_for == 900
    assert actions.redis_bgsave is not None and actions.redis_bgsave.cooldown == 1800


def test_per_target_override_changes_only_what_it_writes() -> None:
    config = _load(
        {
            "enabled": True,
            "actions": {
                "terminate_idle_connections": {"idle_for": "10m", "exclude_users": ["ops"]}
            },
        },
        {"dry_run": False, "actions": {"terminate_idle_connections": {"max_per_run": 3}}},
    ).config
    rc = config.remediation_for(config.targets[0])
    idle = rc.actions.terminate_idle_connections
    assert rc.enabled is True and rc.dry_run is False
    assert idle is not None
    assert (idle.idle_for, idle.max_per_run, idle.exclude_users) == (600, 3, ["ops"])
    off = _load({"enabled": True}, {"enabled": False}).config
    assert off.remediation_for(off.targets[0]).enabled is False


def test_unknown_action() -> None:
    assert _problems({"actions": {"vacuum_everything": {}}}) == [
        "remediation.actions.vacuum_everything: unknown key"
    ]


def test_ratio_out_of_range() -> None:
    problems = _problems(
        {"actions": {"terminate_idle_connections": {"when_utilization_above": 1.5}}}
    )
    assert problems == [
        "remediation.actions.terminate_idle_connections.when_utilization_above: "
        "Input should be less than or equal to 1"
    ]


def test_no_trigger() -> None:
    problems = _problems(
        {"actions": {"terminate_idle_connections": {"when_utilization_above": None}}}
    )
    assert problems == [
        "remediation.actions.terminate_idle_connections: set when_utilization_above or always: true"
    ]


def test_duration_without_unit() -> None:
    problems = _problems({"actions": {"redis_bgsave": {"cooldown": 30}}})
    assert problems == [
        "remediation.actions.redis_bgsave.cooldown: expected a duration with a unit, like 90s, "
        "10m, 7d"
    ]


def test_zero_max_per_run_in_a_target_override() -> None:
    problems = _problems({}, {"actions": {"terminate_idle_in_transaction": {"max_per_run": 0}}})
    assert problems == [
        "targets[0].remediation.actions.terminate_idle_in_transaction.max_per_run: "
        "Input should be greater than or equal to 1"
    ]


def test_kill_switch_path_is_a_path_not_a_secret_file() -> None:
    config = _load({"kill_switch_path": "/run/drwatch/stop"}).config
    assert config.remediation.kill_switch_path == "/run/drwatch/stop"


def test_webhook_maps_alert_names_to_known_actions() -> None:
    config = _load(
        {
            "webhook": {
                "token": "0123456789abcdef",
                "alerts": {"DrwatchConnectionPoolSaturation": "terminate_idle_connections"},
            }
        }
    ).config
    assert config.remediation.webhook is not None
    assert "0123456789abcdef" not in repr(config.remediation.webhook)
    problems = _problems(
        {"webhook": {"token": "0123456789abcdef", "alerts": {"DrwatchDataGap": "restore_backup"}}}
    )
    assert len(problems) == 1
    assert problems[0].startswith("remediation.webhook.alerts.DrwatchDataGap: Input should be")


def test_webhook_token_too_short() -> None:
    problems = _problems({"webhook": {"token": "short", "alerts": {"A": "redis_bgsave"}}})
    assert problems == ["remediation.webhook.token: String should have at least 16 characters"]


def test_webhook_only_in_the_global_section() -> None:
    problems = _problems(
        {}, {"webhook": {"token": "0123456789abcdef", "alerts": {"A": "redis_bgsave"}}}
    )
    assert problems == ["targets[0].remediation.webhook: unknown key"]


def test_webhook_token_must_be_visible_ascii() -> None:
    (problem,) = config_problems(
        "remediation: {webhook: {token: 'jeton-de-sécurité-0123', alerts: {A: redis_bgsave}}}\n"
        "targets: [{name: a, redis: {url: 'redis://127.0.0.1:1/0'}}]"
    )
    assert problem.startswith("remediation.webhook.token: use visible ASCII characters only")
