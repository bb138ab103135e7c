"""Whatever a config file holds, loading it gives a config or a list of problems: never a
crash, a hang or unbounded memory (at start, on SIGHUP and in `config validate`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
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


def _validate_under_1gib(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`drwatch config validate` as users run it, under a 1 GiB address-space limit."""
    return subprocess.run(
        ["prlimit", "--as=1073741824", "--", sys.executable, "-m", "exporter", "config",
         "validate", str(config)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **env},
    )  # fmt: skip


def test_a_big_scalar_named_by_thousands_of_aliases_is_refused_by_size(tmp_path: Path) -> None:
    """One 200 kB scalar holding ${HOME}, referenced ~70,000 times: few nodes, 14 GB once built.
    Refused with the limit, in bounded memory and time, no traceback."""
    scalar = "${HOME}" * (200_000 // 7)
    refs = ", ".join(["*s"] * 1000)
    lines = [f"s: &s '{scalar}'", f"l: &l [{refs}]"]
    lines += [f"m{i}: [{', '.join(['*l'] * 10)}]" for i in range(7)]  # 70,000 references
    config = tmp_path / "bomb.yml"
    config.write_text("\n".join([*lines, "targets: []"]) + "\n")
    started = time.monotonic()
    proc = _validate_under_1gib(config, {"HOME": "/root"})
    assert time.monotonic() - started < 30
    assert proc.returncode != 0
    assert "expands to more than 4 MiB of text (YAML aliases?)" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "MemoryError" not in proc.stderr


def test_variables_that_expand_past_the_limit_are_refused(tmp_path: Path) -> None:
    """A small file whose ${VAR}, long in the environment, is named at many aliased places."""
    lines = ["v: &v '${BIG}'", f"l: &l [{', '.join(['*v'] * 100)}]",
             f"m: [{', '.join(['*l'] * 100)}]", "targets: []"]  # fmt: skip
    config = tmp_path / "vars.yml"
    config.write_text("\n".join(lines) + "\n")
    proc = _validate_under_1gib(config, {"BIG": "x" * 100_000})  # 10,000 x 100 kB = 1 GB
    assert proc.returncode != 0
    assert "${BIG} and the other substitutions expand to more than 16 MiB" in (
        proc.stdout + proc.stderr
    )
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_secret_file_named_at_many_aliased_places_is_read_once_and_counted(
    tmp_path: Path,
) -> None:
    """A 291-byte config whose `dsn_file` (a 60 kB file) is named by 10,000 aliased targets:
    the file is read once, and what it adds counts against the same budget as variables."""
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://u:" + "p" * 60_000 + "@127.0.0.1/db\n")
    lines = [f"pg: &pg {{dsn_file: {secret}}}", "t: &t {name: a, postgres: *pg}",
             f"l: &l [{', '.join(['*t'] * 100)}]", f"targets: [{', '.join(['*l'] * 100)}]"]  # fmt: skip
    config = tmp_path / "secrets.yml"
    config.write_text("\n".join(lines) + "\n")
    assert config.stat().st_size < 1000
    started = time.monotonic()
    proc = _validate_under_1gib(config, {})
    assert time.monotonic() - started < 30
    assert proc.returncode != 0
    assert "dsn_file (" in proc.stdout + proc.stderr
    assert "and the other substitutions expand to more than 16 MiB" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and "MemoryError" not in proc.stderr


def test_dollar_escapes_in_an_aliased_scalar_cost_bounded_time(tmp_path: Path) -> None:
    scalar = "$$" * 100_000
    lines = [f"s: &s '{scalar}'", f"l: &l [{', '.join(['*s'] * 100)}]",
             f"m: [{', '.join(['*l'] * 100)}]", "targets: []"]  # fmt: skip
    config = tmp_path / "dollars.yml"
    config.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    proc = _validate_under_1gib(config, {})
    assert time.monotonic() - started < 30 and proc.returncode != 0
    assert "expands to more than 4 MiB of text" in proc.stdout + proc.stderr


def test_a_yaml_mistake_is_reported_where_it_begins() -> None:
    """An unclosed quote on line 4 is reported at line 4, not where the parser gave up."""
    (problem,) = config_problems('a: 1\nb: 2\nc: 3\nd: "unclosed\ne: 5\nf: 6\n')
    assert problem.startswith("line 4, column 4: not valid YAML: while scanning a quoted scalar")
    (bracket,) = config_problems("targets:\n  - name: a\n    x: [1, 2\n    y: 3\n")
    assert bracket.startswith("line 3, ")
