"""Real services for `make run` and the tests: PostgreSQL clusters on free loopback ports."""
