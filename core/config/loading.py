"""Loading the config: bytes to YAML data (core.config.reading), `${VAR}` and `*_file` secrets
(core.config.interpolation), sections switched off by an empty connection string, and the schema
(core.config.schema). Every problem is reported at once, with its YAML path
(`targets[0].postgres.dsn: ...`), and nothing a file holds makes loading crash or hang.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, ValidationError

from core.config.aws import RdsConfig
from core.config.interpolation import Interpolator
from core.config.postgres import PostgresConfig
from core.config.reading import MAX_CONFIG_BYTES, decode, load_yaml, read_regular_file, yaml_path
from core.config.redis import RedisConfig
from core.config.schema import Config
from core.config.stores import BackupsConfig
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
    missing_env: list[str] = field(default_factory=list)  # allowed unset (config validate)


# Sections that switch off when their connection string or store is empty (`${VAR:-}`), and a
# stand-in for that value, so the rest of an off section is validated all the same.
_SWITCHES: dict[str, tuple[str, type[BaseModel], str]] = {
    "postgres": ("dsn", PostgresConfig, "postgresql://off"),
    "backups": ("store", BackupsConfig, "file:///off/"),
    "rds": ("instance", RdsConfig, "off"),
    "redis": ("url", RedisConfig, "redis://off"),
}


def _switch_off_empty_sections(
    data: dict[str, Any], interp: Interpolator
) -> tuple[list[OffSection], list[str]]:
    """The sections that are off (removed from `data`), and the problems in their shape."""
    off: list[OffSection] = []
    problems: list[str] = []
    for i, target in enumerate(data.get("targets") or []):
        if not isinstance(target, dict):
            continue
        switched: set[str] = set()
        for section, (key, model, stand_in) in _SWITCHES.items():
            body = target.get(section)
            where = yaml_path(["targets", i, section, key])
            if isinstance(body, dict) and body.get(key) == "" and where not in interp.failed_paths:
                why = interp.empty_because.get(where)
                name = str(target.get("name", f"targets[{i}]"))
                reason = f"{where} is empty" + (f" ({why} not set)" if why else "")
                off.append(OffSection(name, section, reason))
                problems += _validate(model, {**body, key: stand_in}, ["targets", i, section])
                del target[section]
                switched.add(section)
        off += _drills_off(target, switched)
    return off, problems


# A drill restores what a section stores: with that section off, the drill is off too; and so
# is a drill whose own store in it came out empty (`replica_store: ${REPLICA_STORE:-}`).
_DRILL_SOURCES = {
    "full_restore": ("backups", "store"),
    "pitr": ("backups", "wal_store"),
    "cross_region": ("backups", "replica_store"),
    "redis": ("redis", "snapshot_store"),
}


def _drills_off(target: dict[str, Any], switched: set[str]) -> list[OffSection]:
    drills = target.get("drills")
    if not isinstance(drills, dict):
        return []
    off = []
    name = str(target.get("name", "?"))
    for scenario, (section, key) in _DRILL_SOURCES.items():
        if drills.get(scenario) is None:
            continue
        body = target.get(section)
        if section in switched:
            off.append(OffSection(name, f"drills.{scenario}", f"the {section} section is off"))
        elif isinstance(body, dict) and body.get(key) == "":
            off.append(OffSection(name, f"drills.{scenario}", f"{section}.{key} is empty"))
        else:
            continue
        del drills[scenario]
    return off


def _validate(model: type[BaseModel], data: object, at: list[Any]) -> list[str]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return [_describe(e, at) for e in exc.errors()]
    return []


def _describe(error: Any, at: list[Any] | None = None) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key" + _did_you_mean([*(at or []), *error["loc"]])
    elif kind == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{yaml_path([*(at or []), *error['loc']])}: {msg}"


def parse_config(
    text: str,
    env: dict[str, str] | None = None,
    base_dir: Path | None = None,
    allow_missing_env: bool = False,
) -> LoadedConfig:
    """Validates YAML text into a Config; raises ConfigError listing every problem."""
    raw = load_yaml(text)
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): expected a mapping with a `targets` list"])
    origins = _add_target_files(raw, base_dir or Path.cwd())
    interp = Interpolator(
        dict(os.environ) if env is None else env, base_dir or Path.cwd(), allow_missing_env
    )
    data = interp.walk(raw, [])
    off, problems = _switch_off_empty_sections(data, interp)
    problems = interp.problems + problems
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(e) for e in exc.errors())
    if problems or config is None:
        raise ConfigError([_in_its_file(problem, origins) for problem in problems])
    return LoadedConfig(
        config=config,
        off=off,
        secrets=interp.secrets | _secrets(config),
        missing_env=sorted(set(interp.missing)),
    )


def _add_target_files(raw: dict[str, Any], base_dir: Path) -> dict[int, str]:
    """Appends the targets of every file `target_files` matches (a fleet's generated
    `targets.d/*.yml`, each a list of targets, relative to the config's directory) to `targets`;
    where each appended target came from, by its index."""
    patterns = raw.pop("target_files", None)
    if patterns is None:
        return {}
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(
            ["target_files: expected a list of file patterns, e.g. [targets.d/*.yml]"]
        )
    targets = raw.setdefault("targets", [])
    if not isinstance(targets, list):
        return {}  # the schema says what is wrong with `targets`
    origins: dict[int, str] = {}
    problems: list[str] = []
    for pattern in patterns:
        root, relative = (
            (Path("/"), pattern.lstrip("/")) if pattern.startswith("/") else (base_dir, pattern)
        )
        for file in sorted(root.glob(relative)):
            if file.is_dir():  # `targets.d/*` may match a directory: its files are not targets
                continue
            try:
                doc = load_yaml(decode(read_regular_file(file, MAX_CONFIG_BYTES), str(file)))
            except ConfigError as exc:
                problems += [f"{file}: {problem}" for problem in exc.problems]
                continue
            if not isinstance(doc, list):
                problems.append(f"{file}: expected a list of targets")
                continue
            for index, target in enumerate(doc):
                origins[len(targets)] = f"{file}: targets[{index}]"
                targets.append(target)
    if problems:
        raise ConfigError(problems)
    return origins


def _model_at(path: list[Any]) -> type[BaseModel] | None:
    """The schema model a config path's parent is validated with (Config at the top)."""
    model: Any = Config
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", {})
        field = fields.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside `X | None`, `list[X]`, `dict[str, X]`, or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        if (found := _inner_model(arg)) is not None:
            return found
    return None


def _did_you_mean(loc: list[Any]) -> str:
    """`; did you mean 'interval'?` for a misspelt key, when one is close."""
    if not loc or not isinstance(loc[-1], str):
        return ""
    model = _model_at(loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""


def _in_its_file(problem: str, origins: dict[int, str]) -> str:
    """`targets[7].redis.url: ...` as `targets.d/cache.yml: targets[2].redis.url: ...`, wherever
    a target's index appears (a repeated name names both files)."""

    def origin(match: re.Match[str]) -> str:
        return origins.get(int(match[1]), match[0])

    return re.sub(r"targets\[(\d+)\]", origin, problem)


def _secrets(config: Config) -> set[str]:
    """Every secret the config holds, for the redactor."""
    secrets = set()
    if config.aws.secret_access_key:
        secrets.add(config.aws.secret_access_key)
    if config.remediation.webhook is not None:
        secrets.add(config.remediation.webhook.token)
    for target in config.targets:
        if target.backups is not None and target.backups.pgbackrest_cipher_pass is not None:
            secrets.add(target.backups.pgbackrest_cipher_pass.get_secret_value())
        if target.backups is not None and target.backups.replica_aws is not None:
            secrets.add(target.backups.replica_aws.secret_access_key or "")
        if target.redis is not None:
            secrets |= {target.redis.password or "", urlparse(target.redis.url).password or ""}
        if target.postgres is not None:
            for dsn in (target.postgres.dsn, target.postgres.verification.dsn):
                if dsn:
                    secrets.add(str(conninfo_to_dict(dsn).get("password") or ""))
    return secrets - {""}


def load_config(path: str | Path, allow_missing_env: bool = False) -> LoadedConfig:
    file = Path(path)
    text = decode(read_regular_file(file, MAX_CONFIG_BYTES), str(file))
    return parse_config(text, base_dir=file.parent, allow_missing_env=allow_missing_env)
