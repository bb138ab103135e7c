"""Replication slots on a real server: an inactive slot holding WAL back, a slot the server
invalidates under max_slot_wal_keep_size (lost), the exposure until then, and the label cap."""

from __future__ import annotations

from checks.base import Status
from sandbox.pgcluster import PgCluster
from tests.helpers import CheckHarness, make_config, sample

SEG = 16 * 1024 * 1024


def _harness(cluster: PgCluster, **options: object) -> CheckHarness:
    pg = {"dsn": cluster.dsn(), "replication_slots": options}
    return CheckHarness(make_config([{"name": "db", "postgres": pg}]))


def test_an_inactive_slot_holding_wal_back(cluster: PgCluster) -> None:
    cluster.execute("SELECT pg_create_physical_replication_slot('forgotten', true)")
    harness = _harness(cluster, inactive_retained_bytes=2 * SEG)
    first = harness.run("replication_slots")
    assert first.status == Status.OK, first.summary
    assert sample(first, "drwatch_pg_replication_slot_active", slot="forgotten",
                  slot_type="physical") == 0  # fmt: skip
    assert sample(first, "drwatch_pg_replication_slot_wal_status", slot="forgotten",
                  status="reserved") == 1  # fmt: skip
    assert sample(first, "drwatch_pg_replication_slot_safe_wal_bytes", slot="forgotten") is None
    cluster.write_wal(4)
    result = harness.run("replication_slots")
    assert sample(result, "drwatch_pg_replication_slot_retained_bytes", slot="forgotten") > 3 * SEG
    assert result.status == Status.WARNING
    assert "inactive slot forgotten holds back" in result.summary
    assert sample(result, "drwatch_pg_wal_rate_bytes_per_second") > 0  # measured between runs


def test_a_slot_the_server_gave_up_on_is_lost(cluster: PgCluster) -> None:
    cluster.set(max_slot_wal_keep_size="32MB")
    cluster.execute("SELECT pg_create_physical_replication_slot('standby_b', true)")
    harness = _harness(cluster)
    harness.run("replication_slots")
    cluster.write_wal(1)
    reserved = harness.run("replication_slots")
    safe = sample(reserved, "drwatch_pg_replication_slot_safe_wal_bytes", slot="standby_b")
    assert safe is not None and 0 < safe <= 32 * 1024 * 1024
    assert sample(reserved, "drwatch_pg_replication_slot_exposure_seconds", slot="standby_b") > 0
    cluster.write_wal(6)
    cluster.execute("CHECKPOINT")  # the checkpoint removes the WAL and invalidates the slot
    lost = harness.run("replication_slots")
    assert sample(lost, "drwatch_pg_replication_slot_wal_status", slot="standby_b",
                  status="lost") == 1  # fmt: skip
    assert lost.status == Status.CRITICAL
    assert "slot standby_b is lost: its consumer can never catch up" in lost.summary


def test_slot_labels_are_capped(cluster: PgCluster) -> None:
    for i in range(5):
        cluster.execute(f"SELECT pg_create_physical_replication_slot('s{i}', {i < 2})")
    cluster.write_wal(1)
    result = _harness(cluster, max_slots=2).run("replication_slots")
    labelled = {
        dict(s.labels)["slot"] for s in result.samples
        if s.name == "drwatch_pg_replication_slot_retained_bytes"
    }  # fmt: skip
    assert labelled == {"s0", "s1"}  # the two that hold WAL back
    assert sample(result, "drwatch_pg_replication_slots_unlabelled") == 3
    assert "5 slots, 5 inactive" in result.summary
