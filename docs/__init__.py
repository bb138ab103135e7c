"""Build-time generators for the documentation (not part of the installed package)."""
