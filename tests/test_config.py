"""Config loading: interpolation, secrets from files, durations, and one test per config error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config.loading import load_config, parse_config
from core.durations import format_duration, parse_duration
from core.errors import ConfigError
from tests.helpers import drwatch

ROOT = Path(__file__).resolve().parent.parent
DSN = "postgresql://drwatch@127.0.0.1:5999/app"


def _problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=env or {})
    return info.value.problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("7d", 604800),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("0s", 0),
        ("2w", 1209600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["15", "10 minutes", "m", "-5s", "", 15, True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 0.3, 45, 720, 11100, 187200)] == [
        "0s",
        "<1s",
        "45s",
        "12m",
        "3h5m",
        "2d4h",
    ]


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


def test_interpolation_defaults_and_escapes() -> None:
    loaded = parse_config(
        'targets: [{name: "${NAME:-fallback}", postgres: {dsn: "${DSN}", verification: '
        '{custom: [{name: x, help: "costs $$5", sql: "SELECT 1 AS value"}]}}}]',
        env={"DSN": DSN},
    )
    target = loaded.config.targets[0]
    assert target.name == "fallback"
    assert target.postgres is not None and target.postgres.dsn == DSN
    assert target.postgres.verification.custom[0].help == "costs $5"


def test_empty_connection_string_switches_the_section_off_and_says_why() -> None:
    loaded = parse_config('targets: [{name: a, postgres: {dsn: "${DATABASE_URL:-}"}}]', env={})
    assert loaded.config.targets[0].postgres is None
    assert [str(o) for o in loaded.off] == [
        "a: postgres is off: targets[0].postgres.dsn is empty (DATABASE_URL not set)"
    ]


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "dsn").write_text("postgresql://u:from-a-file@127.0.0.1/db\n")
    (tmp_path / "c.yml").write_text("targets: [{name: a, postgres: {dsn_file: dsn}}]")
    loaded = load_config(tmp_path / "c.yml")
    assert loaded.config.targets[0].postgres is not None
    assert loaded.config.targets[0].postgres.dsn == "postgresql://u:from-a-file@127.0.0.1/db"
    assert "from-a-file" in loaded.secrets


# --- one test per config error: each names its path --------------------------------------------


def test_unset_variable() -> None:
    assert _problems("targets: [{name: a, postgres: {dsn: '${DATABASE_URL}'}}]") == [
        "targets[0].postgres.dsn: environment variable DATABASE_URL is not set "
        "(write ${DATABASE_URL:-} to make it optional)"
    ]


def test_unknown_key() -> None:
    assert _problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}', intervall: 5s}}}}]") == [
        "targets[0].postgres.intervall: unknown key"
    ]


def test_duration_without_unit() -> None:
    assert _problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}', interval: 15}}}}]") == [
        "targets[0].postgres.interval: expected a duration with a unit, like 90s, 10m, 7d"
    ]


def test_ratio_out_of_range() -> None:
    (problem,) = _problems(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}', connections: {{saturation_ratio: 1.5}}}}}}]"
    )
    assert problem.startswith("targets[0].postgres.connections.saturation_ratio: ")


def test_unknown_scenario() -> None:
    (problem,) = _problems(
        f"objectives: {{pitt: {{rpo: 5m}}}}\ntargets: [{{name: a, postgres: {{dsn: '{DSN}'}}}}]"
    )
    assert problem.startswith("objectives.pitt")


def test_no_targets() -> None:
    assert _problems("targets: []")[0].startswith("targets: ")
    assert _problems("objectives: {}") == ["targets: required key is missing"]


def test_duplicate_target_names() -> None:
    (problem,) = _problems(
        f"targets: [{{name: a, postgres: {{dsn: '{DSN}'}}}}, {{name: a, postgres: {{dsn: '{DSN}'}}}}]"
    )
    assert problem == "targets: target name 'a' repeats"


def test_target_name_not_label_safe() -> None:
    (problem,) = _problems(f"targets: [{{name: 'a b', postgres: {{dsn: '{DSN}'}}}}]")
    assert problem.startswith("targets[0].name: ")


def test_invalid_dsn_does_not_echo_it() -> None:
    (problem,) = _problems(
        "targets: [{name: a, postgres: {dsn: 'postgresql://u:hunter22@h:notaport/x y=z'}}]"
    )
    assert problem == "targets[0].postgres.dsn: not a valid PostgreSQL connection string"


def test_custom_metric_errors() -> None:
    problems = _problems(
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


def test_secret_file_missing(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("targets: [{name: a, postgres: {dsn_file: /nonexistent/dsn}}]")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yml")
    assert (
        info.value.problems[0]
        == "targets[0].postgres.dsn_file: cannot read /nonexistent/dsn: No such file or directory"
    )


def test_both_value_and_file() -> None:
    assert _problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}', dsn_file: x}}}}]")[0] == (
        "targets[0].postgres.dsn_file: set either dsn or dsn_file"
    )


def test_yaml_syntax_error() -> None:
    (problem,) = _problems("targets: [\n  {name: a")
    assert problem.startswith("line ") and "not valid YAML" in problem


def test_three_mistakes_reported_together_by_config_validate(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        f"""
targets:
  - name: prod
    postgres:
      dsn: '{DSN}'
      interval: fast
      connections: {{idle_treshold: 10m}}
      verification:
        gaps: [{{table: debates, column: created_at}}]
"""
    )
    proc = drwatch("config", "validate", str(bad))
    assert proc.returncode == 1
    assert "targets[0].postgres.interval: " in proc.stderr
    assert "targets[0].postgres.connections.idle_treshold: unknown key" in proc.stderr
    assert (
        "targets[0].postgres.verification.gaps[0].threshold: required key is missing" in proc.stderr
    )


def test_example_config_validates_with_and_without_its_environment() -> None:
    example = ROOT / "examples" / "aragora.yml"
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "BACKUP_STORE",
            "WAL_STORE",
            "REPLICA_STORE",
            "RDS_INSTANCE",
            "REDIS_URL",
            "REDIS_SNAPSHOT_STORE",
            "DRWATCH_STATE_DIR",
        )
    }
    proc = drwatch(
        "config",
        "validate",
        str(example),
        env={
            **env,
            "DATABASE_URL": DSN,
            "BACKUP_STORE": "s3://aragora-backups/postgres/",
            "WAL_STORE": "file:///var/lib/wal/",
            "REPLICA_STORE": "s3://aragora-backups-dr/postgres/",
            "RDS_INSTANCE": "aragora-prod",
            "REDIS_URL": "redis://:not-shown@127.0.0.1:6390/0",
            "REDIS_SNAPSHOT_STORE": "file:///var/lib/redis-snapshots/",
        },
    )
    assert proc.returncode == 0, proc.stderr
    for check in (
        "wal_archiving",
        "replication",
        "connections",
        "verification",
        "backups",
        "wal_archive",
        "replica_copy",
        "rds",
        "redis_persistence",
        "redis_replication",
        "redis_snapshots",
    ):
        assert f"aragora-prod: {check} every" in proc.stdout
    unset = drwatch("config", "validate", str(example), env=env)
    assert unset.returncode == 0, unset.stderr
    assert (
        "off: aragora-prod: postgres is off: targets[0].postgres.dsn is empty (DATABASE_URL not set)"
        in unset.stdout
    )
    assert (
        "off: aragora-prod: backups is off: targets[0].backups.store is empty (BACKUP_STORE not set)"
        in unset.stdout
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
    (problem,) = _problems(f"targets: [{targets}]")
    assert problem.startswith("targets: custom metric 'm' is declared with a different")
