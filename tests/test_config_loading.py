"""Config loading: interpolation, secrets from files, durations, and one test per config error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config.loading import load_config, parse_config
from core.errors import ConfigError
from tests.helpers import DSN, config_problems, drwatch

ROOT = Path(__file__).resolve().parent.parent


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
    assert config_problems("targets: [{name: a, postgres: {dsn: '${DATABASE_URL}'}}]") == [
        "targets[0].postgres.dsn: environment variable DATABASE_URL is not set "
        "(write ${DATABASE_URL:-} to make it optional)"
    ]


def test_secret_file_missing(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_text("targets: [{name: a, postgres: {dsn_file: /nonexistent/dsn}}]")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.yml")
    assert (
        info.value.problems[0]
        == "targets[0].postgres.dsn_file: cannot read /nonexistent/dsn: No such file or directory"
    )


def test_both_value_and_file() -> None:
    assert config_problems(f"targets: [{{name: a, postgres: {{dsn: '{DSN}', dsn_file: x}}}}]")[
        0
    ] == ("targets[0].postgres.dsn_file: set either dsn or dsn_file")


def test_yaml_syntax_error() -> None:
    (problem,) = config_problems("targets: [\n  {name: a")
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
