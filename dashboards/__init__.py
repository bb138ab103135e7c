"""Grafana dashboards for drwatch, generated from code: `python -m dashboards.build`."""
