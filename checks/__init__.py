"""Observe-only checks: one module per source of truth, connections in, Observation out."""
