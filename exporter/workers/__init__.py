"""Checks in worker processes: the daemon's side (pool) and the worker's (process)."""
