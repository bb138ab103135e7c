"""`${VAR}` and `${VAR:-default}` from the environment, and `<key>_file` secrets read from files,
applied to the plain data of a config; every problem collected with its YAML path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from core.config.reading import MAX_SECRET_BYTES, decode, read_regular_file, yaml_path
from core.errors import ConfigError

# What ${VAR} substitutions may produce in all: a variable named at 100,000 aliased places
# must not build gigabytes before the config is refused.
MAX_INTERPOLATED_BYTES = 16 << 20
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Interpolator:
    def __init__(self, env: dict[str, str], base_dir: Path, allow_missing: bool = False) -> None:
        self.env = env
        # `config validate --allow-missing-env`: an unset ${VAR} is empty (its section then
        # off), listed instead of refused: a CI job without production secrets validates.
        self.allow_missing = allow_missing
        self.missing: list[str] = []
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.secrets: set[str] = set()
        self.empty_because: dict[str, str] = {}
        self.failed_paths: set[str] = set()
        self.produced = 0  # bytes the substitutions and secret files have produced so far
        # Each secret file read once: a file named at 100,000 aliased places is not read (nor
        # held) 100,000 times.
        self._files: dict[Path, str | None] = {}

    def walk(self, node: Any, path: list[Any]) -> Any:
        if isinstance(node, dict):
            return self._mapping(node, path)
        if isinstance(node, list):
            return [self.walk(v, [*path, i]) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self._string(node, path)
        return node

    def _mapping(self, node: dict[Any, Any], path: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            key = str(key)
            if key.endswith("_file") and isinstance(value, str):
                base = key[: -len("_file")]
                if base in node:
                    self.problems.append(f"{yaml_path([*path, key])}: set either {base} or {key}")
                    continue
                out[base] = self._read_secret_file(self._string(value, [*path, key]), path, key)
            else:
                out[key] = self.walk(value, [*path, key])
        return out

    def _read_secret_file(self, filename: str, path: list[Any], key: str) -> str:
        file = Path(filename)
        if not file.is_absolute():
            file = self.base_dir / file
        where = yaml_path([*path, key])
        if file not in self._files:
            try:
                found = decode(read_regular_file(file, MAX_SECRET_BYTES), str(file)).strip()
            except ConfigError as exc:
                self.problems += [f"{where}: {problem}" for problem in exc.problems]
                found = None
            self._files[file] = found
        secret = self._files[file]
        if secret is None:
            return ""
        self._count(len(secret), where, f"{key} ({file})")
        self.secrets.add(secret)
        return secret

    def _count(self, produced: int, where: str, what: str) -> None:
        """Every byte substituted counts against one budget, secrets' included."""
        self.produced += produced
        if self.produced > MAX_INTERPOLATED_BYTES:
            raise ConfigError(
                [f"{where}: {what} and the other substitutions expand to more than "
                 f"{MAX_INTERPOLATED_BYTES >> 20} MiB (YAML aliases?)"]
            )  # fmt: skip

    def _string(self, text: str, path: list[Any]) -> str:
        if "$" not in text:  # most strings: no scan, no copy
            return text
        unset: list[str] = []

        def substitute(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in self.env:
                self._count(len(self.env[name]), yaml_path(path), f"${{{name}}}")
                return self.env[name]
            if default is None and self.allow_missing:
                self.missing.append(name)
                unset.append(name)
                return ""
            if default is None:
                self.failed_paths.add(yaml_path(path))
                self.problems.append(
                    f"{yaml_path(path)}: environment variable {name} is not set "
                    f"(write ${{{name}:-}} to make it optional)"
                )
                return ""
            unset.append(name)
            return default

        result = _VAR.sub(substitute, text)
        if not result and unset:
            self.empty_because[yaml_path(path)] = ", ".join(unset)
        return result
