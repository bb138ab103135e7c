"""drwatch: proves, continuously, that PostgreSQL and Redis can be recovered within objectives."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drwatch")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
