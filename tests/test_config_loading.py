"""Config loading: interpolation, secrets from files, durations, and one test per config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.loading import load_config, parse_config
from core.errors import ConfigError
from tests.helpers import DSN, config_problems

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


def test_a_drill_whose_own_store_comes_out_empty_is_off_not_an_error() -> None:
    text = (
        "targets: [{name: a, backups: {store: 'file:///b/', replica_store: '${REPLICA_STORE:-}'},"
        " drills: {full_restore: {}, cross_region: {}}}]"
    )
    loaded = parse_config(text, env={})
    assert loaded.config.targets[0].drill_scenarios() == ["full_restore"]
    assert [str(o) for o in loaded.off] == [
        "a: drills.cross_region is off: backups.replica_store is empty"
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


def _fleet(tmp_path: Path, files: dict[str, str], main: str = "") -> Path:
    (tmp_path / "targets.d").mkdir()
    for name, text in files.items():
        (tmp_path / "targets.d" / name).write_text(text)
    config = tmp_path / "drwatch.yml"
    config.write_text(f"target_files: [targets.d/*.yml]\n{main}")
    return config


def test_targets_come_from_every_file_target_files_matches(tmp_path: Path) -> None:
    config = _fleet(
        tmp_path,
        {
            "b.yml": "- {name: cache-b, redis: {url: 'redis://127.0.0.1:1/0'}}\n",
            "a.yml": "- {name: cache-a1, redis: {url: 'redis://127.0.0.1:1/0'}}\n"
            "- {name: cache-a2, redis: {url: 'redis://127.0.0.1:1/0'}}\n",
            "notes.txt": "not a target file",
        },
        main="targets: [{name: main, redis: {url: 'redis://127.0.0.1:1/0'}}]\n",
    )
    names = [t.name for t in load_config(config).config.targets]
    assert names == ["main", "cache-a1", "cache-a2", "cache-b"]  # the main file's, then by name


def test_a_bad_target_in_a_targets_file_is_named_by_its_file(tmp_path: Path) -> None:
    config = _fleet(
        tmp_path,
        {
            "a.yml": "- {name: ok, redis: {url: 'redis://127.0.0.1:1/0'}}\n",
            "b.yml": "- {name: ok2, redis: {url: 'redis://127.0.0.1:1/0'}}\n"
            "- {name: bad, redis: {url: 'redis://127.0.0.1:1/0', interval: soon}}\n",
        },
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    (problem,) = raised.value.problems
    assert problem.startswith(f"{tmp_path}/targets.d/b.yml: targets[1].redis.interval: ")


def test_a_targets_file_that_is_not_a_list_is_named(tmp_path: Path) -> None:
    config = _fleet(tmp_path, {"a.yml": "name: lonely\n"})
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.problems == [f"{tmp_path}/targets.d/a.yml: expected a list of targets"]


def test_the_same_target_name_in_two_files_is_refused(tmp_path: Path) -> None:
    target = "- {name: twin, redis: {url: 'redis://127.0.0.1:1/0'}}\n"
    config = _fleet(tmp_path, {"a.yml": target, "b.yml": target})
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert raised.value.problems == [
        f"targets: target name 'twin' repeats: {tmp_path}/targets.d/a.yml: targets[0] and "
        f"{tmp_path}/targets.d/b.yml: targets[0]"
    ]


def test_a_directory_a_target_files_pattern_matches_is_not_a_file_of_targets(
    tmp_path: Path,
) -> None:
    config = _fleet(tmp_path, {"a.yml": "- {name: one, redis: {url: 'redis://127.0.0.1:1/0'}}\n"})
    (tmp_path / "targets.d" / "old.yml").mkdir()  # a directory named like a targets file
    assert [t.name for t in load_config(config).config.targets] == ["one"]
    # Named as such where a file is expected (a config path, a secret file).
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path / "targets.d")


def test_target_files_must_be_a_list_of_patterns() -> None:
    assert config_problems("target_files: targets.d/*.yml\n") == [
        "target_files: expected a list of file patterns, e.g. [targets.d/*.yml]"
    ]
