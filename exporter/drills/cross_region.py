"""The `cross_region` drill (the runbook's "Full DR drill"): the full restore's work done from
the cross-region store, as a recovery in the other region would do it.

The backup restored is the copy, in `backups.replica_store`, of the newest backup the primary
store holds verified, downloaded with the replica's own access (`backups.replica_aws`). No copy,
or a copy that is not the same object (ETag, else content), fails the drill naming the store and
the key: in a real
regional outage that is the backup you would not have.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from checks.support.copies import DigestCache, is_copy, plain_etags
from checks.support.stores import StoredObject, listed_backups, nested_prefixes, open_store
from checks.support.verdicts import VerdictCache
from core.config.schema import Config, Target
from exporter.drills.copy_checks import heartbeat_at_start
from exporter.drills.full_restore import restore_dump
from exporter.drills.result import DrillResult, Timer
from exporter.drills.scratch import DRILL_FAILURES, DrillError, new_scratch_dir

SCENARIO = "cross_region"


def run(config: Config, target: Target, deadline: float) -> DrillResult:
    drills, backups = target.drills, target.backups
    assert drills is not None and drills.cross_region is not None
    assert backups is not None and backups.store and backups.replica_store
    timer = Timer(DrillResult(target.name, SCENARIO, time.time()), deadline)
    heartbeat_at_start(target, timer)
    try:
        workdir = new_scratch_dir(drills.scratch, config.state_dir, "dr-")
    except DrillError as exc:  # no room of its own to restore in: a failed drill, said
        return timer.fail(exc, drills.timeout)
    try:
        primary = open_store(backups.store, config.aws)
        exclude = nested_prefixes(
            backups.store, backups.wal_store, backups.base_store, backups.replica_store
        )
        dumps = listed_backups(primary, backups.patterns, exclude)
        timer.result.sizes = [(d.modified, d.size) for d in dumps]
        newest = _newest_verified(config, target, dumps)
        replica = open_store(backups.replica_store, backups.replica_aws or config.aws)
        copy = next((o for o in replica.list() if o.key == newest.key), None)
        if copy is None:
            raise DrillError(f"{newest.key} is not in {replica.url}: nothing to restore there")
        digests = DigestCache(Path(config.state_dir) / f"digests-{target.name}.json")
        if not is_copy(primary, newest, replica, copy, digests):
            raise DrillError(
                f"{newest.key} in {replica.url} differs from {primary.url}'s "
                f"({copy.size} bytes, ETag {copy.etag}; the primary's {newest.size} bytes, "
                f"ETag {newest.etag}; compared by "
                f"{'ETag' if plain_etags(newest, copy) else 'SHA-256 of the content'})"
            )
        return restore_dump(config, target, timer, workdir, replica, copy, drills.cross_region.jobs)
    except DRILL_FAILURES as exc:
        return timer.fail(exc, drills.timeout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _newest_verified(config: Config, target: Target, dumps: list[StoredObject]) -> StoredObject:
    """The newest backup the backups check found whole (any newest one with `verify: none`)."""
    backups = target.backups
    assert backups is not None
    if not dumps:
        raise DrillError(f"no backup in {backups.store} whose copy could be restored")
    if backups.verify == "none":
        return dumps[-1]
    directory = Path(config.verdict_dir or config.state_dir)
    verdicts = VerdictCache(directory / f"verdicts-{target.name}.json")
    for dump in reversed(dumps):
        verdict = verdicts.get(dump)
        if verdict is not None and verdict.ok:
            return dump
    raise DrillError(
        f"no backup in {backups.store} is verified yet (the backups check reads each once): "
        "no copy to prove"
    )
