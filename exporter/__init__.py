"""drwatch: proves, continuously, that PostgreSQL and Redis can be recovered within objectives."""

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _version() -> str:
    try:
        return version("drwatch")
    except PackageNotFoundError:  # run from a source tree without an install: its pyproject says
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"]) + "+source"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0.0.0+unknown"


__version__ = _version()
