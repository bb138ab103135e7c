"""The bottom layer: the vocabulary every other package shares (errors, durations, redaction,
metric declarations, the config schema and its loading). It imports nothing of drwatch above it."""
