"""From a file's bytes to plain data, safely: whatever a config file holds, the result is data
or a list of problems, never a crash, a hang or unbounded memory.

Checked before any Python object is built, on the YAML node graph: duplicate keys (with both
lines), nesting depth, alias cycles, and the size the document grows to once aliases are
expanded (a "billion laughs" of a few hundred bytes would otherwise take gigabytes).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from core.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20  # a config is a few kB; a bigger file is a mistake or an attack
MAX_DEPTH = 64
MAX_NODES = 100_000  # scalars, lists and mappings, with aliases expanded
# The text of every scalar, counted at every alias that refers to it: a 200 kB scalar named
# 70,000 times is 14 GB once built, though the file is small and its nodes few.
MAX_EXPANDED_BYTES = 4 << 20


def decode(data: bytes, where: str) -> str:
    """UTF-8 text, or a ConfigError naming the first offending byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start : exc.start + 1]
        raise ConfigError(
            [f"cannot read {where}: not UTF-8 text (byte {exc.start}: {byte!r})"]
        ) from None


def yaml_path(parts: list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Limits:
    def __init__(self) -> None:
        self.nodes = 0
        self.bytes = 0
        self.problems: list[str] = []

    def walk(self, node: yaml.Node, path: list[Any], stack: tuple[int, ...]) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConfigError(
                [f"the config expands to more than {MAX_NODES} values (YAML aliases?)"]
            )
        if isinstance(node, yaml.ScalarNode):
            self.bytes += len(node.value)
            if self.bytes > MAX_EXPANDED_BYTES:
                raise ConfigError(
                    [f"{yaml_path(path)}: the config expands to more than "
                     f"{MAX_EXPANDED_BYTES >> 20} MiB of text (YAML aliases?)"]
                )  # fmt: skip
        if id(node) in stack:
            raise ConfigError([f"{yaml_path(path)}: a YAML alias refers to itself"])
        if len(stack) >= MAX_DEPTH:
            raise ConfigError([f"{yaml_path(path)}: nested more than {MAX_DEPTH} levels deep"])
        inner = (*stack, id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.walk(item, [*path, i], inner)
        elif isinstance(node, yaml.MappingNode):
            self._mapping(node, path, inner)

    def _mapping(self, node: yaml.MappingNode, path: list[Any], inner: tuple[int, ...]) -> None:
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            line = key.start_mark.line + 1
            if name == "<<":  # a merge key: its mapping's keys are checked where it is defined
                self.walk(value, path, inner)
                continue
            if name in seen:
                self.problems.append(
                    f"{yaml_path([*path, name])}: duplicate key (lines {seen[name]} and {line})"
                )
            seen.setdefault(name, line)
            self.walk(value, [*path, name], inner)


def load_yaml(text: str) -> Any:
    """The document's data; ConfigError listing every problem found."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        limits = _Limits()
        limits.walk(node, [], ())
        if limits.problems:
            raise ConfigError(limits.problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)]) from None
    except RecursionError:
        raise ConfigError([f"nested more than {MAX_DEPTH} levels deep"]) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the mistake is: what was left open (a quote, a bracket) is where it began, not the
    line at which the parser gave up on it."""
    problem, mark = getattr(exc, "problem", None) or str(exc), getattr(exc, "problem_mark", None)
    opened, context = getattr(exc, "context_mark", None), getattr(exc, "context", None)
    if opened is not None and context:
        found = f" (found at line {mark.line + 1})" if mark is not None else ""
        return (
            f"line {opened.line + 1}, column {opened.column + 1}: not valid YAML: {context}: "
            f"{problem}{found}"
        )
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}not valid YAML: {problem}"


MAX_SECRET_BYTES = 64 << 10


def read_regular_file(file: Path, limit: int) -> bytes:
    """The bytes of `file`, only if it is a regular file of at most `limit` bytes.

    A FIFO would block the read forever (and with it a reload and the daemon's main loop), and
    /dev/zero never ends: both are refused. Opened non-blocking so a FIFO cannot block the open.
    """
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError([f"cannot read {file}: {exc.strerror}"]) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory or a FIFO: before fdopen
            raise ConfigError([f"cannot read {file}: not a regular file"])
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ConfigError([f"cannot read {file}: larger than {limit} bytes"])
    return data
