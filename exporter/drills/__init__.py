"""Restore drills: scheduled, isolated, timed restores of the newest backups."""
