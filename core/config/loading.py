"""Loading the config: YAML, `${VAR}` interpolation, `*_file` secrets, every problem at once.

Every problem is reported with its YAML path (`targets[0].postgres.dsn: ...`). The schema itself
is in `core.config.schema`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from psycopg.conninfo import conninfo_to_dict
from pydantic import ValidationError

from core.config.schema import Config
from core.errors import ConfigError


@dataclass(frozen=True)
class OffSection:
    """A section switched off because its connection string or store came out empty."""

    target: str
    section: str
    why: str

    def __str__(self) -> str:
        return f"{self.target}: {self.section} is off: {self.why}"


@dataclass
class LoadedConfig:
    config: Config
    off: list[OffSection] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)


# Sections that switch off when their connection string or store is empty (`${VAR:-}`).
_SWITCH_KEYS = {"postgres": "dsn", "backups": "store", "rds": "instance", "redis": "url"}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _path(parts: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Interpolator:
    def __init__(self, env: dict[str, str], base_dir: Path) -> None:
        self.env = env
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.secrets: set[str] = set()
        self.empty_because: dict[str, str] = {}
        self.failed_paths: set[str] = set()

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
                    self.problems.append(f"{_path([*path, key])}: set either {base} or {key}")
                    continue
                out[base] = self._read_secret_file(self._string(value, [*path, key]), path, key)
            else:
                out[key] = self.walk(value, [*path, key])
        return out

    def _read_secret_file(self, filename: str, path: list[Any], key: str) -> str:
        file = Path(filename)
        if not file.is_absolute():
            file = self.base_dir / file
        try:
            secret = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            self.problems.append(f"{_path([*path, key])}: cannot read {file}: {exc.strerror}")
            return ""
        self.secrets.add(secret)
        return secret

    def _string(self, text: str, path: list[Any]) -> str:
        unset: list[str] = []

        def substitute(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            if default is None:
                self.failed_paths.add(_path(path))
                self.problems.append(
                    f"{_path(path)}: environment variable {name} is not set "
                    f"(write ${{{name}:-}} to make it optional)"
                )
                return ""
            unset.append(name)
            return default

        result = _VAR.sub(substitute, text)
        if not result and unset:
            self.empty_because[_path(path)] = ", ".join(unset)
        return result


def _switch_off_empty_sections(data: dict[str, Any], interp: _Interpolator) -> list[OffSection]:
    off: list[OffSection] = []
    for i, target in enumerate(data.get("targets") or []):
        if not isinstance(target, dict):
            continue
        for section, key in _SWITCH_KEYS.items():
            body = target.get(section)
            where = _path(["targets", i, section, key])
            if isinstance(body, dict) and body.get(key) == "" and where not in interp.failed_paths:
                why = interp.empty_because.get(where)
                name = str(target.get("name", f"targets[{i}]"))
                reason = f"{where} is empty" + (f" ({why} not set)" if why else "")
                off.append(OffSection(name, section, reason))
                del target[section]
    return off


def _describe(error: Any) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key"
    elif kind == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{_path(error['loc'])}: {msg}"


def parse_config(
    text: str, env: dict[str, str] | None = None, base_dir: Path | None = None
) -> LoadedConfig:
    """Validates YAML text into a Config; raises ConfigError listing every problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping with a `targets` list"])
    interp = _Interpolator(dict(os.environ) if env is None else env, base_dir or Path.cwd())
    data = interp.walk(raw, [])
    off = _switch_off_empty_sections(data, interp)
    problems = list(interp.problems)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(e) for e in exc.errors())
    if problems or config is None:
        raise ConfigError(problems)
    secrets = set(interp.secrets)
    if config.aws.secret_access_key:
        secrets.add(config.aws.secret_access_key)
    if config.remediation.webhook is not None:
        secrets.add(config.remediation.webhook.token)
    for target in config.targets:
        if target.redis is not None:
            for secret in (target.redis.password, urlparse(target.redis.url).password):
                if secret:
                    secrets.add(secret)
    for target in config.targets:
        if target.postgres is not None:
            password = conninfo_to_dict(target.postgres.dsn).get("password")
            if password:
                secrets.add(str(password))
    return LoadedConfig(config=config, off=off, secrets=secrets)


def load_config(path: str | Path) -> LoadedConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror}"]) from None
    return parse_config(text, base_dir=file.parent)
