"""Where a pitr drill's copy comes from: the base backup restored by its tool's own procedure
(`drills.pitr.method: tool`: pgBackRest, barman-cloud-restore, barman recover, wal-g
backup-fetch; pg_basebackup's tars as PostgreSQL documents) or by drwatch's own reader
(`drwatch`: pg_basebackup and barman-cloud backups), and the WAL recovery fetches: the team's
own restore_command as written, the tool's, or drwatch's reader of the archive. The record says
which path each took (`values.method`, `restored_by`, `wal_from`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from checks.backup_tools import barman_cloud, pg_basebackup
from checks.backup_tools.base import BackupTool, BaseBackup, RestoreSource
from checks.backup_tools.registry import (
    detect_catalogue,
    read_catalogue,
    restoring_tool,
)
from checks.support.stores import Store, StoredObject
from checks.support.tarballs import TAR_SUFFIXES
from core.config.aws import AwsConfig
from core.config.schema import Config, Target
from core.config.stores import BackupsConfig
from core.errors import CheckError
from exporter.drills.physical import PhysicalCopy
from exporter.drills.recovery_point import Point, choose, point_kind, random_lsn, window_start_label
from exporter.drills.result import Timer
from exporter.drills.scratch import DrillError, require_space
from exporter.drills.wal_fetch import (
    archive,
    archive_end_lsn,
    base_store_of,
    download,
    quote,
    recovery,
    spool_wal,
    wal_store_of,
)

log = logging.getLogger(__name__)
NO_BASE_BACKUP = (
    "PITR needs a physical base backup (pg_basebackup -Ft, barman-cloud or WAL-G into "
    "drills.pitr.base_store, or drills.pitr.pgbackrest): WAL cannot be replayed on a logical "
    "restore of a dump"
)
DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SAID_FALLBACK: set[tuple[str, str]] = set()  # (target, tool): the drwatch path said once


def restore(copy: PhysicalCopy, config: Config, target: Target, workdir: Path, timer: Timer) -> str:
    """The base backup restored into the copy and its recovery set up: what was restored."""
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and backups is not None
    if pitr.pgbackrest:
        if pitr.method == "drwatch":
            raise DrillError(
                "drills.pitr.method: drwatch: pgBackRest's sets are restored by pgBackRest "
                "(drwatch reads its catalogue, not its files): use method tool or auto"
            )
        return _restore_with_pgbackrest(copy, target, timer)
    if not pitr.base_store:
        raise DrillError(NO_BASE_BACKUP)
    store = base_store_of(config, target)
    objects = list(store.list())
    layout = detect_catalogue(objects) if backups.base_layout == "auto" else backups.base_layout
    if layout is None or layout == pg_basebackup.TOOL.layout:
        return _restore_tar_backup(copy, config, target, workdir, timer, objects)
    return _restore_catalogued(copy, config, target, workdir, timer, store, objects, layout)


def _method(target: Target, tool: BackupTool) -> str:
    """tool or drwatch, as configured; auto: the tool where it is installed, else drwatch's
    reader where it reads the tool's backups, said once per target."""
    pitr = target.drills.pitr  # type: ignore[union-attr]
    assert pitr is not None
    ours = tool.name == barman_cloud.TOOL.name  # the tools whose bases drwatch reads itself
    installed = tool.restore is not None and tool.restore.program.find() is not None
    if pitr.method == "tool" or (pitr.method == "auto" and installed):
        if tool.restore is None:
            raise DrillError(f"{tool.title} has no restore of its own drwatch can run")
        if not installed:
            needed = tool.restore.program
            raise DrillError(
                f"drills.pitr.method: tool: {needed.name} is not installed here "
                f"({needed.package})"
            )
        return "tool"
    if not ours:
        raise DrillError(
            f"drwatch's own reader restores pg_basebackup and barman-cloud base backups, not "
            f"{tool.title}'s: install {tool.restore.program.name if tool.restore else 'it'} "
            "and use drills.pitr.method: tool (or auto)"
        )
    if pitr.method == "auto" and (target.name, tool.name) not in _SAID_FALLBACK:
        _SAID_FALLBACK.add((target.name, tool.name))
        missing = tool.restore.program.name if tool.restore else tool.title
        log.warning(
            "target %s: pitr drills restore %s backups with drwatch's own reader: %s is not "
            "installed (the team's own restore is not what they prove)",
            target.name, tool.title, missing,
        )  # fmt: skip
    return "drwatch"


def _restore_catalogued(
    copy: PhysicalCopy,
    config: Config,
    target: Target,
    workdir: Path,
    timer: Timer,
    store: Store,
    objects: list[StoredObject],
    layout: str,
) -> str:
    """The newest backup the tool's catalogue lists as a recovery point, restored by the tool
    (its own restore and WAL fetch) or by drwatch's reader (its data tar, the archive's WAL)."""
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and backups is not None
    if pitr.point != "newest":
        raise DrillError(f"drills.pitr.point: {pitr.point} needs pg_basebackup backups")
    tool = restoring_tool(layout, objects)
    segment_size = backups.wal_segment_size or DEFAULT_SEGMENT_SIZE
    try:
        catalogue = read_catalogue(store, objects, layout, segment_size)
    except CheckError as exc:
        raise DrillError(f"{store.url}: {exc}") from None
    usable = [b for b in catalogue if b.error is None and b.pending is None]
    if not usable:
        raise DrillError(f"no {tool.title} backup in {store.url} is a recovery point")
    chosen, method = usable[-1], _method(target, tool)
    timer.result.point = "newest"
    timer.result.values.update(
        backup=chosen.label, backup_bytes=chosen.size, backup_time=chosen.stopped, method=method,
        restored_by=tool.title if method == "tool" else "drwatch",
    )  # fmt: skip
    timer.result.sizes = [(b.stopped, b.size) for b in usable]
    require_space(workdir, chosen.size, target.drills.scratch.disk_factor)  # type: ignore[union-attr]
    if method == "tool":
        assert tool.restore is not None
        source = RestoreSource(
            store_url=str(pitr.replica_base_store if pitr.source == "replica" else pitr.base_store),
            endpoint_url=_aws(config, target).endpoint_url,
            config=pitr.tool_config,
            stanza=pitr.barman_server,
        )
        tool_files = [pitr.tool_config] if pitr.tool_config else []  # its config, read-only
        copy.use_restore_command(pitr.restore_env, [*pitr.restore_files, *tool_files])
        with timer.phase("restore", chosen.size):
            tools_command = copy.restore_with(tool.restore, source, chosen.label)
        settings = _wal_source(copy, target, timer, recovery(target), tools_command)
    else:
        _restore_barman_cloud_tar(copy, store, objects, chosen, workdir, timer, backups)
        settings = _wal_source(copy, target, timer, recovery(target), None) or recovery(target)
        if "restore_command" not in settings:
            with timer.phase("download"):
                wal_store = wal_store_of(config, target)
                start = chosen.wal_start or ""
                spool_wal(wal_store, archive(wal_store, backups), start, copy.wal, timer,
                           copy.segment_size())  # fmt: skip
    with timer.phase("restore"):
        copy.recover(settings)
    return f"{tool.title} backup {chosen.label}"


def _aws(config: Config, target: Target) -> AwsConfig:
    """The access the drill's source is read with: the replica's own for `from: replica`."""
    pitr, backups = target.drills.pitr, target.backups  # type: ignore[union-attr]
    assert pitr is not None and backups is not None
    return (backups.replica_aws or config.aws) if pitr.source == "replica" else config.aws


def _restore_barman_cloud_tar(
    copy: PhysicalCopy,
    store: Store,
    objects: list[StoredObject],
    chosen: BaseBackup,
    workdir: Path,
    timer: Timer,
    backups: BackupsConfig,
) -> None:
    """drwatch's reader of a barman-cloud backup: its `data.tar[...]` is the cluster's base tar
    (backup_label inside); it has no manifest, so the files are not checked against one (said);
    tablespaces (tars named by the tablespace) are the tool's to place."""
    data, others = barman_cloud.backup_files(objects, chosen.label)
    if data is None or others:
        extra = ", ".join(o.key.rpartition("/")[2] for o in others)
        raise DrillError(
            f"barman-cloud backup {chosen.label} holds {extra or 'no data tar'}: drwatch's own "
            "reader restores a backup without tablespaces; use drills.pitr.method: tool"
        )
    suffix = barman_cloud.data_suffix(data)
    if suffix not in TAR_SUFFIXES:
        raise DrillError(
            f"barman-cloud backup {chosen.label}: data{suffix} is compressed in a way drwatch's "
            "reader does not unpack (gzip, lz4, zstd or none): use drills.pitr.method: tool"
        )
    with timer.phase("download", data.size):
        into = workdir / pg_basebackup.base_tar(suffix)  # unpacked as pg_basebackup's base tar
        with open(into, "wb") as sink:
            for block in store.chunks(data.key):
                sink.write(block)
                timer.remaining()
    with timer.phase("restore"):
        copy.unpack(workdir, backups.uncompressed_cap, manifest=False)
    timer.result.values["verified"] = "no backup_manifest: files not checked against one"


def _wal_source(
    copy: PhysicalCopy,
    target: Target,
    timer: Timer,
    settings: dict[str, str],
    tools_command: str | None,
) -> dict[str, str]:
    """The recovery settings with the restore_command that fetches WAL: the team's own as
    written (its options, keys and credentials are what is proven), else the tool's; none when
    drwatch's reader spools the archive (empty: the caller spools)."""
    pitr = target.drills.pitr  # type: ignore[union-attr]
    assert pitr is not None
    if pitr.restore_command:
        timer.result.values["wal_from"] = "restore_command"
        if tools_command is None:  # the tool's restore was given them already
            copy.use_restore_command(pitr.restore_env, pitr.restore_files)
        return {"restore_command": quote(pitr.restore_command), **settings}
    if tools_command:
        timer.result.values["wal_from"] = "tool"
        return {"restore_command": quote(tools_command), **settings}
    timer.result.values["wal_from"] = "drwatch"
    return {}


def _restore_tar_backup(
    copy: PhysicalCopy,
    config: Config,
    target: Target,
    workdir: Path,
    timer: Timer,
    objects: list[StoredObject],
) -> str:
    """The newest pg_basebackup -Ft backup, checked with pg_verifybackup, WAL from the store
    spooled where the copy's restore_command finds it. What was restored."""
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.pitr is not None and backups is not None
    base_store = base_store_of(config, target)
    wal_store = wal_store_of(config, target)
    backups_found = pg_basebackup.backups_in(objects)
    if not backups_found:
        raise DrillError(
            f"no base backup with a backup_manifest in {base_store.url}. {NO_BASE_BACKUP}"
        )
    taken = [max(f.modified for f in files) for files in backups_found]
    wal_objects = archive(wal_store, backups)
    archive_end = max((o.modified for o in wal_objects), default=None)
    point = choose(point_kind(config, target), taken, archive_end)
    timer.result.point = point.asked
    if point.asked == "oldest":
        point = _window_start(point, base_store, wal_store, backups, backups_found, timer)
    files = backups_found[point.index]
    size = sum(f.size for f in files)
    timer.result.values.update(
        backup=files[0].key.rpartition("/")[0], backup_bytes=size, backup_time=taken[point.index]
    )
    timer.result.sizes = [
        (t, sum(f.size for f in b)) for t, b in zip(taken, backups_found, strict=True)
    ]
    require_space(workdir, size, drills.scratch.disk_factor)
    with timer.phase("download", size):
        download(base_store, files, workdir, timer)
    with timer.phase("restore"):
        copy.unpack(workdir, backups.uncompressed_cap)
        segment_size = copy.segment_size()
        try:
            manifest = (workdir / pg_basebackup.MANIFEST).read_bytes()
            start, end_lsn = pg_basebackup.wal_range(manifest, segment_size)
        except (OSError, ValueError) as exc:
            raise DrillError(str(exc)) from None
    timer.result.values.update(method="tool", restored_by="pg_basebackup's documented restore")
    settings = point.settings or recovery(target)
    if point.asked == "random":
        settings = random_lsn(end_lsn, archive_end_lsn(wal_objects, segment_size))
        timer.result.values["point_target"] = next(iter(settings.values())).strip("'")
    settings = _wal_source(copy, target, timer, settings, None) or settings
    if "restore_command" not in settings:  # drwatch's own reader: the archive's bytes
        with timer.phase("download"):
            spool_wal(wal_store, wal_objects, start, copy.wal, timer, segment_size)
    with timer.phase("restore"):
        copy.recover(settings)
    return files[0].key.rpartition("/")[0]


def _restore_with_pgbackrest(copy: PhysicalCopy, target: Target, timer: Timer) -> str:
    """pgBackRest restores its newest backup set that is a recovery point (`--set`; checking
    every file against its own manifest) and fetches the WAL itself (archive-get), as a real
    recovery would."""
    assert target.drills is not None and target.drills.pitr is not None
    source = target.drills.pitr.pgbackrest
    assert source is not None
    with timer.phase("restore"):
        restore_command, chosen, passed_over = copy.restore_pgbackrest(source.config, source.stanza)
        copy.recover({"restore_command": quote(restore_command), **recovery(target)})
    timer.result.values.update(backup=chosen, method="tool", restored_by="pgBackRest",
                               wal_from="tool")  # fmt: skip
    passed = f", newer set(s) not recovery points: {'; '.join(passed_over)}" if passed_over else ""
    return f"pgBackRest stanza {source.stanza} set {chosen}{passed}"


def _window_start(
    point: Point,
    base: Store,
    wal: Store,
    backups: BackupsConfig,
    found: list[list[StoredObject]],
    timer: Timer,
) -> Point:
    """The oldest point: the backup the recovery window starts at, as drwatch reports it."""
    label = window_start_label(base, wal, backups)
    if label is None:
        raise DrillError(
            "no base backup has continuous WAL to the archive's newest: the recovery window "
            "is empty"
        )
    timer.result.values["window_start"] = label
    labels = [files[0].key.rpartition("/")[0] for files in found]
    return replace(point, index=labels.index(label)) if label in labels else point
