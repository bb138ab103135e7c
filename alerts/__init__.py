"""The alert rules, their tests, and the generator of the Kubernetes PrometheusRule (build time)."""
