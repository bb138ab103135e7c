"""The config schema: defaults, and one test per kind of mistake, each naming its YAML path."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml

from core.config.drills import cron_trigger
from core.config.loading import parse_config
from tests.helpers import DSN, config_problems, make_config


def test_defaults_are_the_runbook_table_and_targets_override_one_field() -> None:
    loaded = parse_config(
        f"""
objectives: {{full_restore: {{rpo: 2h}}}}
targets:
  - name: prod
    objectives: {{pitr: {{rpo: 2m}}}}
    postgres: {{dsn: "{DSN}"}}
""",
        env={},
    )
    config = loaded.config
    prod = config.targets[0]
    assert (config.objective(prod, "pitr").rto, config.objective(prod, "pitr").rpo) == (1800, 120)
    assert config.objective(prod, "full_restore").rpo == 7200
    assert config.objective(prod, "primary_failover").rpo == 0
    assert config.objective(prod, "cross_region").rto == 4 * 3600
    assert config.objective(prod, "redis").rpo == 3600
    pg = prod.postgres
    assert pg is not None and pg.interval == 15 and pg.connections.idle_threshold == 600
    assert pg.connections.saturation_ratio == 0.8


def test_unknown_key() -> None:
    assert config_problems(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}', intervall: 5s}}}}]"
    ) == ["targets[0].postgres.intervall: unknown key; did you mean 'interval'?"]


def test_duration_without_unit() -> None:
    assert config_problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}', interval: 15}}}}]") == [
        "targets[0].postgres.interval: expected a duration with a unit, like 90s, 10m, 7d"
    ]


def test_ratio_out_of_range() -> None:
    (problem,) = config_problems(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}', connections: {{saturation_ratio: 1.5}}}}}}]"
    )
    assert problem.startswith("targets[0].postgres.connections.saturation_ratio: ")


def test_unknown_scenario() -> None:
    (problem,) = config_problems(
        f"objectives: {{pitt: {{rpo: 5m}}}}\ntargets: [{{name: a, postgres: {{dsn: '{DSN}'}}}}]"
    )
    assert problem.startswith("objectives.pitt")


def test_no_targets() -> None:
    assert config_problems("targets: []")[0].startswith("targets: ")
    assert config_problems("objectives: {}") == ["targets: required key is missing"]


def test_duplicate_target_names() -> None:
    (problem,) = config_problems(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}'}}}}, {{name: a, postgres: {{dsn: '{DSN}'}}}}]"
    )
    assert problem == "targets: target name 'a' repeats: targets[0] and targets[1]"


def test_target_name_not_label_safe() -> None:
    (problem,) = config_problems(f"targets: [{{name: 'a b', postgres: {{dsn: '{DSN}'}}}}]")
    assert problem.startswith("targets[0].name: ")


def test_invalid_dsn_does_not_echo_it() -> None:
    (problem,) = config_problems(
        "targets: [{name: a, postgres: {dsn: 'postgresql://u:hunter22@h:notaport/x y=z'}}]"
    )
    assert problem == "targets[0].postgres.dsn: not a valid PostgreSQL connection string"


def test_custom_metric_errors() -> None:
    problems = config_problems(
        f"""
targets:
  - name: a
    postgres:
      dsn: '{DSN}'
      verification:
        custom:
          - {{name: "bad-name", help: x, sql: "SELECT 1"}}
          - {{name: ok, help: x, sql: "SELECT 1", labels: [target]}}
          - {{name: ok2, help: x, sql: "SELECT 1", labels: [value]}}
"""
    )
    assert problems[0].startswith(
        "targets[0].postgres.verification.custom[0].name: 'bad-name' is not a valid"
    )
    assert (
        problems[1]
        == "targets[0].postgres.verification.custom[1].labels: label 'target' is reserved by drwatch"
    )
    assert (
        problems[2]
        == "targets[0].postgres.verification.custom[2]: column 'value' cannot be both the value and a label"
    )


def test_verification_runs_once_a_minute_unless_told() -> None:
    loaded = parse_config(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}', verification: {{orphans: []}}}}}}]", env={}
    )
    assert loaded.config.targets[0].postgres is not None
    assert loaded.config.targets[0].postgres.verification.interval == 60


def test_custom_metric_declared_differently_in_two_targets() -> None:
    custom = "{{name: m, help: h, sql: 'SELECT 1 AS value', labels: [{label}]}}"
    targets = ", ".join(
        f"{{name: t{i}, postgres: {{dsn: '{DSN}', verification: {{custom: [{custom.format(label=label)}]}}}}}}"
        for i, label in enumerate(("a", "b"))
    )
    (problem,) = config_problems(f"targets: [{targets}]")
    assert problem.startswith("targets: custom metric 'm' is declared with a different")


def test_an_unescaped_at_in_a_password_is_refused_without_echoing_it() -> None:
    for url in (
        "postgresql://app:Pw@Secret-Tail-777@127.0.0.1:5432/db",
        "redis://:Pw@Secret-Tail-777@127.0.0.1:6379/0",
    ):
        section = "postgres: {dsn" if url.startswith("postgresql") else "redis: {url"
        (problem,) = config_problems(f"targets: [{{name: a, {section}: '{url}'}}}}]")
        assert "more than one '@' before the host: percent-encode '@'" in problem
        assert "Secret-Tail" not in problem and "Pw" not in problem


def test_a_drill_never_restores_onto_a_watched_server() -> None:
    (problem,) = config_problems(
        yaml.safe_dump(
            {
                "targets": [
                    {"name": "prod", "postgres": {"dsn": "postgresql://u@db.internal:5432/app"}},
                    {
                        "name": "other",
                        "backups": {"store": "file:///b/"},
                        "drills": {
                            "schedule": "0 3 * * 0",
                            "scratch": {"dsn": "host=db.internal port=5432 dbname=postgres"},
                            "full_restore": {},
                        },
                    },
                ]
            }
        )
    )
    assert problem == (
        "targets: target 'other': drills.scratch.dsn is the server of target 'prod'; a drill "
        "never writes to a monitored server"
    )


def test_a_drill_schedule_is_five_cron_fields_with_sunday_as_zero() -> None:
    base = {"name": "a", "backups": {"store": "file:///b/"}}
    (problem,) = config_problems(
        yaml.safe_dump({"targets": [{**base, "drills": {"schedule": "0 3 * *"}}]})
    )
    assert problem.startswith("targets[0].drills: schedule: '0 3 * *': expected five fields")
    loaded = make_config([{**base, "drills": {"schedule": "0 3 * * 0", "full_restore": {}}}])
    drills = loaded.config.targets[0].drills
    assert drills is not None
    trigger = cron_trigger(drills.schedule, drills.timezone)
    after = datetime(2026, 11, 26, tzinfo=UTC)  # a Thursday
    assert trigger.get_next_fire_time(None, after) == datetime(2026, 11, 29, 3, tzinfo=UTC)


def test_a_pitr_target_time_names_its_time_zone() -> None:
    drills = {"schedule": "0 3 * * 0", "pitr": {"base_store": "file:///base/"}}
    target = {"name": "a", "backups": {"store": "file:///b/", "wal_store": "file:///wal/"}}
    drills["pitr"]["target_time"] = "2026-11-26 03:00:00"  # type: ignore[index]
    (problem,) = config_problems(yaml.safe_dump({"targets": [{**target, "drills": drills}]}))
    assert problem.startswith("targets[0].drills.pitr.target_time: ")
    assert "timezone" in problem
    drills["pitr"]["target_time"] = "2026-11-26T03:00:00+01:00"  # type: ignore[index]
    loaded = make_config([{**target, "drills": drills}])
    assert loaded.config.targets[0].drills.pitr.target_time == datetime(  # type: ignore[union-attr]
        2026, 11, 26, 2, tzinfo=UTC
    )


def test_a_drill_without_what_it_restores_is_refused_by_name() -> None:
    target = {"name": "cache", "postgres": {"dsn": DSN},
              "drills": {"schedule": "0 3 * * 0", "redis": {}}}  # fmt: skip
    (problem,) = config_problems(yaml.safe_dump({"targets": [target]}))
    assert problem == (
        "targets[0]: drills.redis: needs redis.snapshot_store (the snapshots it loads), "
        "which this target lacks"
    )


def test_a_drill_whose_section_is_off_is_off_too() -> None:
    target = {"name": "cache", "redis": {"url": "${REDIS_URL:-}", "snapshot_store": "file:///x/"},
              "postgres": {"dsn": DSN}, "drills": {"schedule": "0 3 * * 0", "redis": {}}}  # fmt: skip
    loaded = parse_config(yaml.safe_dump({"targets": [target]}), env={})
    assert loaded.config.targets[0].drills is not None
    assert loaded.config.targets[0].drill_scenarios() == []
    assert [(o.section, o.why) for o in loaded.off] == [
        ("redis", "targets[0].redis.url is empty (REDIS_URL not set)"),
        ("drills.redis", "the redis section is off"),
    ]


def test_an_unknown_key_nothing_is_close_to_gets_no_guess() -> None:
    (problem,) = [
        p for p in config_problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}'}}}}]\nzzz: 1\n")
    ]
    assert problem == "zzz: unknown key"


def test_pitr_points_and_replica_sources_are_refused_where_they_cannot_run() -> None:
    def pitr(backups: str, **settings: object) -> str:
        return (
            "targets:\n  - name: app\n"
            f"    backups: {backups}\n"
            f"    drills: {{pitr: {json.dumps(settings)}}}\n"
        )

    wal = "{wal_store: 'file:///w/'}"
    (problem,) = config_problems(
        pitr(wal, pgbackrest={"config": "/etc/pgbackrest.conf", "stanza": "main"}, point="rotate")
    )
    assert "point: rotate needs base_store (pg_basebackup backups)" in problem
    (problem,) = config_problems(pitr(wal, base_store="file:///b/", **{"from": "replica"}))
    assert "from: replica restores replica_base_store" in problem
    (problem,) = config_problems(
        pitr(wal, base_store="file:///b/", replica_base_store="file:///rb/", **{"from": "replica"})
    )
    assert "needs backups.wal_replica_store" in problem
    (problem,) = config_problems(pitr(wal, base_store="file:///b/", point="sometimes"))
    assert "drills.pitr.point" in problem


def test_a_pitr_method_drwatch_cannot_restore_pgbackrest_sets() -> None:
    text = (
        "targets:\n  - name: app\n    backups: {wal_store: 'file:///w/'}\n"
        "    drills: {pitr: {method: drwatch, pgbackrest: {config: /etc/p.conf, stanza: main}}}\n"
    )
    (problem,) = config_problems(text)
    assert problem.startswith("targets[0].drills.pitr: ")
    assert "method: drwatch and pgbackrest: pgBackRest's sets are restored by pgBackRest" in problem
    (problem,) = config_problems(text.replace("method: drwatch", "method: sometimes"))
    assert "drills.pitr.method" in problem
