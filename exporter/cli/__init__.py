"""The `drwatch` command line: run, check, config validate, remediate."""
