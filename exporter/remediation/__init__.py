"""Opt-in, guarded remediation: the engine, its PostgreSQL and Redis actions, its metrics and the
Alertmanager webhook that can request them."""
