"""A plain WAL directory: an `archive_command` that copies (`cp`, `rsync`, `aws s3 cp`), each
file under its PostgreSQL name, compressed or not (`<prefix>/<name>[.gz|...]`). Recovery fetches
with a restore_command that copies back; drwatch's own reader is that path."""

from __future__ import annotations

from checks.backup_tools.base import BackupTool

TOOL = BackupTool(name="plain", title="plain WAL directory", layout="plain")
