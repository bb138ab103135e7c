"""The sandbox's data estate: a PostgreSQL primary archiving WAL into a local backup directory
with a synchronous standby, the runbook's schema with seed data, a first dump and its
cross-region copy, and a Redis saving RDB snapshots beside them. Shared by `make run` and the
tests that need a whole estate (the dashboards' live-data test)."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

from sandbox.pgcluster import ARCHIVE_COPY, PgCluster
from sandbox.redisserver import RedisServer
from sandbox.seed import Seeded, seed

TRAFFIC_INTERVAL = 20.0  # a new debate this often, so freshness and archiving have work
SEGMENT_SWITCH_INTERVAL = 60.0  # stands in for archive_timeout on a quiet demo server


class Estate:
    def __init__(self) -> None:
        self.cluster = PgCluster()
        self.standby: PgCluster | None = None
        self.cache: RedisServer | None = None
        self.seeded: Seeded | None = None
        self.dump: Path | None = None
        self.replica = self.cluster.root / "other-region" / "postgres"
        self._stop = threading.Event()

    def start(self) -> Estate:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # Data checksums on, as a production cluster has them (drwatch reports failures).
        # A slot may hold back 1 GB of WAL at most: the server protects itself.
        cluster = self.cluster.init(
            ARCHIVE_COPY, checksums=True, archive_timeout="60", max_slot_wal_keep_size="'1GB'"
        ).start()
        # A synchronous standby, as the runbook's "Primary failover, RPO 0" assumes, streaming
        # through a replication slot.
        self.standby = cluster.create_standby(slot="standby").start()
        cluster.set(synchronous_standby_names="*")
        self.cache = RedisServer(cluster.root / "redis")
        self.cache.dir = cluster.backups / "redis"  # RDB snapshots land in the backup directory
        self.cache.start(save="60 1")
        self.cache.client().set("sandbox:started", time.time())
        self.cache.client().save()
        cluster.execute("CREATE DATABASE aragora")
        with cluster.connect("aragora") as conn:
            self.seeded = seed(conn)
        # drwatch watches as the least-privileged role the README documents, never a superuser.
        cluster.execute("CREATE ROLE drwatch LOGIN; GRANT pg_monitor, pg_signal_backend TO drwatch")
        cluster.execute(
            "GRANT SELECT ON debates, debate_messages, knowledge_nodes TO drwatch", "aragora"
        )
        # A physical base backup beside the dumps: the pitr drill replays the archive onto it.
        cluster.tar_base_backup(cluster.backups / "base")
        self.dump = cluster.dump("aragora", cluster.backups / "postgres")
        # The cross-region copy: the same dump in another store, as S3 replication would do;
        # outside the backup directory, as another region's bucket is.
        self.replica.mkdir(parents=True)
        shutil.copy2(self.dump, self.replica / self.dump.name)
        cluster.execute("SELECT pg_switch_wal()")

    def env(self) -> dict[str, str]:
        """What examples/aragora.yml reads from the environment to watch this estate."""
        assert self.cache is not None and self.standby is not None
        backups = self.cluster.backups
        return {
            "DATABASE_URL": self.cluster.dsn("aragora", user="drwatch"),
            "VERIFICATION_DSN": self.standby.dsn("aragora", user="drwatch"),
            "BACKUP_STORE": f"file://{backups}/postgres/",
            "WAL_STORE": f"file://{self.cluster.archive}/",
            "REPLICA_STORE": f"file://{self.replica}/",
            "DRWATCH_STATE_DIR": str(self.cluster.root / "state"),
            "REDIS_URL": self.cache.url,
            "REDIS_SNAPSHOT_STORE": f"file://{self.cache.dir}/",
            # Remediation on in dry-run: it decides and reports, and touches nothing.
            "DRWATCH_REMEDIATION": "true",
            # A first restore drill shortly after the start, as the server's own OS user.
            "DRWATCH_DRILL_AT_START": "true",
            "DRWATCH_DRILL_USER": "postgres",
            "DRWATCH_DRILL_DIR": str(self.cluster.root / "drills"),
            "BASE_STORE": f"file://{backups}/base/",
        }

    def start_traffic(self) -> None:
        threading.Thread(target=self._traffic, daemon=True).start()

    def _traffic(self) -> None:
        assert self.cache is not None
        ticks = 0
        while not self._stop.wait(TRAFFIC_INTERVAL):
            ticks += 1
            try:
                self.cluster.execute(
                    "INSERT INTO debates (title) VALUES ('live debate')", "aragora"
                )
                self.cache.client().incr("sandbox:debates")
                if ticks * TRAFFIC_INTERVAL % SEGMENT_SWITCH_INTERVAL == 0:
                    self.cluster.execute("SELECT pg_switch_wal()")
            except Exception as exc:  # the demo goes on; drwatch will show what broke
                print(f"sandbox traffic: {exc}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        if self.cache is not None:
            self.cache.destroy()
        if self.standby is not None:
            self.standby.destroy()
        self.cluster.destroy()
