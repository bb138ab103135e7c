"""The README's command block and its smallest config, held to the code: every command, option
and scenario the parser takes is in the block, and the minimal config validates."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from core.config.loading import parse_config
from exporter.cli.main import _parser

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCK = README.split("## Running it", 1)[1].split("```sh", 1)[1].split("```", 1)[0]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_cli_block_lists_every_command_option_and_scenario() -> None:
    lines = {}
    for name, sub in _subcommands(_parser()).items():
        if name == "config":
            sub, name = _subcommands(sub)["validate"], "config validate"
        line = next((x for x in BLOCK.splitlines() if x.startswith(f"drwatch {name} ")
                     or x == f"drwatch {name}"), None)  # fmt: skip
        assert line is not None, f"drwatch {name} is not in the README's command block"
        lines[name] = line
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help":
                    assert option in line, f"drwatch {name} {option} is not in the README"
            for choice in action.choices or ():
                if action.option_strings:
                    assert re.search(rf"\b{choice}\b", line), f"drwatch {name}: {choice}"


def test_the_smallest_config_validates() -> None:
    section = README.split("## Configuration", 1)[1]
    text = section.split("```yaml", 1)[1].split("```", 1)[0]
    loaded = parse_config(text, env={"DATABASE_URL": "postgresql://drwatch@127.0.0.1/app"})
    (target,) = loaded.config.targets
    assert target.backups is not None and target.backups.base_store == "file:///backups/base/"
    assert not loaded.off
