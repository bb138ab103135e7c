"""Running checks: jobs built from the registry, each run under a deadline drwatch owns, the
latest results, and the recovery exposures combined from them."""
