"""`drwatch config validate`: every problem, on or off, and what would run."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import DSN, drwatch, write_config

ROOT = Path(__file__).resolve().parent.parent


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


OFF_BUT_BROKEN = """
targets:
  - name: prod
    postgres:
      dsn: ${DATABASE_URL:-}
      connections: {idle_treshold: 10m}
    backups:
      store: ${BACKUP_STORE:-}
      interval: 15
    redis:
      url: ${REDIS_URL:-}
      retention: 7 days
"""


def test_sections_that_are_off_are_validated_all_the_same(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text(OFF_BUT_BROKEN)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "BACKUP_STORE", "REDIS_URL")
    }
    proc = drwatch("config", "validate", str(config), env=env)
    assert proc.returncode == 1, proc.stdout
    assert "targets[0].postgres.connections.idle_treshold: unknown key" in proc.stderr
    assert "targets[0].backups.interval: expected a duration with a unit" in proc.stderr
    assert "targets[0].redis.retention: " in proc.stderr


def test_a_config_that_runs_no_check_warns_and_strict_fails(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("targets: [{name: prod, postgres: {dsn: '${DATABASE_URL:-}'}}]")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    relaxed = drwatch("config", "validate", str(config), env=env)
    assert relaxed.returncode == 0
    assert "valid, with 1 warning(s): 1 target(s), 0 check(s)" in relaxed.stdout
    assert (
        "off: prod: postgres is off: targets[0].postgres.dsn is empty (DATABASE_URL not set)"
        in relaxed.stdout
    )
    assert "warning: this config runs no check (every section is off)" in relaxed.stderr
    strict = drwatch("config", "validate", "--strict", str(config), env=env)
    assert strict.returncode == 1 and "warning: this config runs no check" in strict.stderr
    # --strict never prints "valid" before failing
    assert ": invalid under --strict: 1 warning(s): 1 target(s)" in strict.stdout


def test_a_pitr_drill_without_a_base_backup_is_said_and_a_pipe_closed_early_is_quiet(
    tmp_path: Path,
) -> None:
    """`drills: {pitr: {}}` restores nothing: said as a warning, never "base backups in None".
    `config validate | head -2`: the reader leaves, drwatch ends quietly (no BrokenPipe
    traceback)."""
    import subprocess
    import sys

    target = {"name": "app", "postgres": {"dsn": DSN},
              "backups": {"wal_store": "file:///backups/wal/"},
              "drills": {"scratch": {"user": "postgres"}, "pitr": {}}}  # fmt: skip
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "s"))
    proc = drwatch("config", "validate", "--strict", str(config))
    assert proc.returncode == 1 and "None" not in proc.stdout
    assert "no base backup configured (base_store or pgbackrest)" in proc.stdout
    assert "app: drills.pitr: no base_store nor pgbackrest: the drill fails" in proc.stderr
    # Enough targets that what validate prints outgrows the pipe's buffer once head has left.
    many = write_config(tmp_path / "many.yml", [
        {"name": f"db{n}", "postgres": {"dsn": DSN}} for n in range(400)
    ], state_dir=str(tmp_path / "s"))  # fmt: skip
    piped = subprocess.run(
        f"{sys.executable} -m exporter config validate {many} | head -1",
        shell=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.stdout.count("\n") == 1 and "Traceback" not in piped.stderr, piped.stderr


def test_validate_says_how_each_store_is_read(tmp_path: Path) -> None:
    backups = {
        "wal_store": "s3://backups/pgbackrest/archive/main/",
        "wal_layout": "pgbackrest",
        "base_store": "s3://backups/pgbackrest/backup/main/",
    }
    config = write_config(tmp_path / "c.yml", [{"name": "db", "backups": backups}])
    proc = drwatch("config", "validate", str(config))
    assert proc.returncode == 0, proc.stderr
    assert "db: WAL store s3://backups/pgbackrest/archive/main/: pgbackrest" in proc.stdout
    assert (
        "db: base backups s3://backups/pgbackrest/backup/main/: layout detected from the names"
        in proc.stdout
    )


def test_validate_takes_the_file_as_every_other_command_does(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yml", [{"name": "a", "redis": {"url": "redis://127.0.0.1:1/0"}}]
    )
    assert drwatch("config", "validate", "--config", str(config)).returncode == 0
    assert drwatch("config", "validate", str(config)).returncode == 0
    both = drwatch("config", "validate", str(config), "--config", str(config))
    assert both.returncode == 2 and "give the config file once" in both.stderr


def test_ci_validates_the_shipped_configs_without_their_secrets(tmp_path: Path) -> None:
    """As the README's `docker run ... config validate --allow-missing-env` does: unset variables
    are allowed and listed, a real mistake still fails."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "PROD_"))}
    for shipped in ("deploy/kubernetes/base/drwatch.yml",
                    "deploy/kubernetes/overlays/example/drwatch.yml"):  # fmt: skip
        strict = drwatch("config", "validate", "--config", str(root / shipped), env=env)
        assert strict.returncode == 1 and "is not set" in strict.stderr, shipped
        allowed = drwatch(
            "config", "validate", "--allow-missing-env", "--config", str(root / shipped), env=env
        )
        assert allowed.returncode == 0, allowed.stderr
        assert "not set (allowed): " in allowed.stdout
    broken = write_config(
        tmp_path / "c.yml", [{"name": "a", "redis": {"url": "${NOPE}", "intervall": "5s"}}]
    )
    mistake = drwatch("config", "validate", "--allow-missing-env", str(broken), env=env)
    assert mistake.returncode == 1 and "intervall: unknown key" in mistake.stderr


def test_hash_password_makes_a_hash_the_web_config_takes(tmp_path: Path) -> None:
    import subprocess
    import sys

    import bcrypt
    import yaml

    from exporter.web.security import load_web_config

    made = subprocess.run(
        [sys.executable, "-m", "exporter", "hash-password"], input="s3cret pw\n",
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    hashed = made.stdout.strip()
    assert bcrypt.checkpw(b"s3cret pw", hashed.encode())
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    assert load_web_config(web).users["prometheus"] == hashed.encode()
    too_long = subprocess.run(
        [sys.executable, "-m", "exporter", "hash-password"], input="x" * 80 + "\n",
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert too_long.returncode == 1 and "72 bytes" in too_long.stderr


def test_validate_lists_each_drill_and_warns_when_root_cannot_run_it(tmp_path: Path) -> None:
    target = {
        "name": "app",
        "postgres": {"dsn": DSN},
        "backups": {"store": "file:///backups/dumps/"},
        "redis": {"url": "redis://127.0.0.1:1/0", "snapshot_store": "file:///backups/redis/"},
        "drills": {"schedule": "0 3 * * 0", "full_restore": {}, "redis": {}},
    }
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "s"))
    proc = drwatch("config", "validate", str(config))
    assert proc.returncode == 0, proc.stderr
    assert (
        "app: drill full_restore (Restore to staging, weekly in the runbook; 0 3 * * 0 UTC, next 20"
    ) in proc.stdout
    assert "newest dump in file:///backups/dumps/ into a throwaway cluster in" in proc.stdout
    assert "app: drill redis (Redis snapshot restore, weekly in the runbook; 0 3 * * 0 UTC" in (
        proc.stdout
    )
    if os.geteuid() == 0:  # as CI runs: a restore never runs as root, no scratch.user is set
        assert "app: drills cannot run: drwatch runs as root, and a restore never does" in (
            proc.stderr
        )
        assert drwatch("config", "validate", "--strict", str(config)).returncode == 1
    target["drills"]["scratch"] = {"user": "postgres"}  # type: ignore[index]
    fixed = write_config(tmp_path / "c2.yml", [target], state_dir=str(tmp_path / "s"))
    quiet = drwatch("config", "validate", "--strict", str(fixed))
    assert quiet.returncode == 0 and "cannot run" not in quiet.stderr, quiet.stderr
    assert "as OS user postgres" in quiet.stdout
    assert "app: drills isolated: bwrap (bubblewrap: no file, process" in quiet.stdout


def test_validate_says_what_restores_without_isolation_need(tmp_path: Path) -> None:
    """No isolation allowed (none): formats that execute are not restored unless the backups'
    writers are trusted, and validate says so with what to set."""
    target = {
        "name": "app",
        "postgres": {"dsn": DSN},
        "backups": {"store": "file:///backups/dumps/"},
        "drills": {"schedule": "0 3 * * 0", "full_restore": {},
                   "scratch": {"user": "postgres", "isolation": "none"}},
    }  # fmt: skip
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "s"))
    proc = drwatch("config", "validate", "--strict", str(config))
    assert proc.returncode == 1
    assert "app: drills isolated: none" in proc.stdout
    assert "not restored unless drills.trust_backups is true" in proc.stderr
    target["drills"]["trust_backups"] = True  # type: ignore[index]
    trusted = write_config(tmp_path / "c2.yml", [target], state_dir=str(tmp_path / "s"))
    assert drwatch("config", "validate", "--strict", str(trusted)).returncode == 0


def test_each_drill_keeps_the_runbooks_frequency_unless_told_otherwise(tmp_path: Path) -> None:
    """No schedule anywhere: the runbook's Backup Testing Schedule (restore to staging weekly,
    WAL replay monthly, full DR quarterly); a scenario's own schedule and max_age win."""
    target = {
        "name": "app",
        "backups": {"store": "file:///b/dumps/", "wal_store": "file:///b/wal/",
                    "replica_store": "file:///b/copy/"},
        "drills": {"scratch": {"user": "postgres"}, "full_restore": {}, "pitr": {},
                   "cross_region": {"schedule": "30 1 1 */6 *", "max_age": "200d"}},
    }  # fmt: skip
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "s"))
    out = drwatch("config", "validate", str(config)).stdout
    assert "drill full_restore (Restore to staging, weekly in the runbook; 0 3 * * 0 UTC" in out
    assert "overdue after 8d" in out
    assert "drill pitr (WAL replay test, monthly in the runbook; 0 4 1 * * UTC" in out
    assert "overdue after 32d" in out
    assert "drill cross_region (Full DR drill, quarterly in the runbook; 30 1 1 */6 * UTC" in out
    assert "overdue after 200d" in out
    assert "copy in file:///b/copy/ of the newest verified dump" in out


def test_a_drill_schedule_that_is_not_cron_is_named_by_its_scenario(tmp_path: Path) -> None:
    target = {
        "name": "app",
        "backups": {"store": "file:///b/dumps/"},
        "drills": {"full_restore": {"schedule": "weekly"}},
    }
    config = write_config(tmp_path / "c.yml", [target], state_dir=str(tmp_path / "s"))
    proc = drwatch("config", "validate", str(config))
    assert proc.returncode == 1
    assert "full_restore.schedule: 'weekly': expected five fields" in proc.stderr


def test_drill_capacity_is_one_section_for_every_target(tmp_path: Path) -> None:
    target = {"name": "app", "backups": {"store": "file:///b/dumps/"}}
    good = write_config(
        tmp_path / "c.yml",
        [target],
        state_dir=str(tmp_path / "s"),
        drills={"max_concurrent": 2, "disk_budget": "50GiB", "wait": "30m"},
    )
    assert drwatch("config", "validate", str(good)).returncode == 0
    bad = write_config(
        tmp_path / "d.yml", [target], state_dir=str(tmp_path / "s"), drills={"max_concurrent": 0}
    )
    proc = drwatch("config", "validate", str(bad))
    assert proc.returncode == 1 and "drills.max_concurrent" in proc.stderr
