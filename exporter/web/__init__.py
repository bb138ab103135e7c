"""What the daemon serves over HTTP: /metrics, the status page, health and readiness."""
