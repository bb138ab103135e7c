"""Whatever a config file holds, loading it gives a config or a list of problems: never a
crash, a hang or unbounded memory (at start, on SIGHUP and in `config validate`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from core.config.loading import load_config
from core.config.reading import MAX_CONFIG_BYTES, MAX_NODES
from core.errors import ConfigError
from tests.helpers import DSN, config_problems


def _load_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_bytes(b"targets: [{name: caf\xe9}]\n")
    assert _load_problems(config) == [f"cannot read {config}: not UTF-8 text (byte 20: b'\\xe9')"]
    secret = tmp_path / "dsn"
    secret.write_bytes(b"postgresql://u:\xff@h/db")
    config.write_text(f"targets: [{{name: a, postgres: {{dsn_file: {secret}}}}}]")
    (problem,) = _load_problems(config)
    assert problem.startswith(f"targets[0].postgres.dsn_file: cannot read {secret}: not UTF-8")


def test_a_recursive_alias() -> None:
    assert config_problems("x: &r [*r]\ntargets: []") == ["x[0]: a YAML alias refers to itself"]


def test_nesting_thousands_deep() -> None:
    (problem,) = config_problems("x: " + "[" * 5000 + "]" * 5000)
    assert "nested more than 64 levels deep" in problem


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]  # 1e8 leaves
    (problem,) = config_problems("\n".join([*lines, "targets: []"]))
    assert problem == f"the config expands to more than {MAX_NODES} values (YAML aliases?)"


def test_a_huge_file_is_refused_up_front(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("# " + "x" * MAX_CONFIG_BYTES)
    assert _load_problems(config) == [f"cannot read {config}: larger than {MAX_CONFIG_BYTES} bytes"]


def test_duplicate_keys_name_both_lines() -> None:
    text = f"targets:\n  - name: a\n    postgres:\n      dsn: {DSN}\n      interval: 5s\n      interval: 10s\n"
    assert config_problems(text) == ["targets[0].postgres.interval: duplicate key (lines 5 and 6)"]


@pytest.mark.timeout(20)
def test_a_secret_file_that_is_a_fifo_or_endless_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    config = tmp_path / "c.yml"
    for source in (fifo, Path("/dev/zero")):
        config.write_text(f"targets: [{{name: a, postgres: {{dsn_file: {source}}}}}]")
        outcome: list[list[str]] = []

        def load(into: list[list[str]] = outcome) -> None:
            into.append(_load_problems(config))

        # A FIFO nobody writes to would block the read for ever: it must not even be opened so.
        worker = threading.Thread(target=load)
        worker.start()
        worker.join(10)
        assert outcome == [
            [f"targets[0].postgres.dsn_file: cannot read {source}: not a regular file"]
        ]
