"""The backup tools drwatch reads and restores with, one module each (pgbackrest, barman,
barman_cloud, walg, pg_basebackup, plain), each registering itself once in `registry`: its store
layout, catalogue, WAL names, backups under way, encryption, and how the tool itself restores a
base backup and fetches WAL. Checks and drills ask the registry; no module outside this package
names a tool's files."""
