"""Replication slots: the WAL each one holds back, and whether its consumer can still catch up.

An inactive slot retains WAL until the disk fills (the most common PostgreSQL DR outage peers
alert on); with `max_slot_wal_keep_size` set, the server invalidates the slot instead (its
`wal_status` turns `lost`) and that consumer can never catch up. The exposure of a slot is how
long until that happens at the WAL rate measured between runs (`safe_wal_size` over bytes per
second); without a limit, only the disk ends it, which SQL cannot see.

Slot names are operator-chosen: the `max_slots` slots retaining the most WAL get a `slot`
label; the rest are counted and summed.
"""

from __future__ import annotations

import time

from checks.base import Check, Observation, Status
from checks.definition import BuildContext, CheckDef, Planned, scheduled
from checks.support.pg import Row, check_session, fetch_all, fetch_one
from core.config.postgres import PostgresConfig, ReplicationSlotsOptions
from core.durations import format_duration
from core.humanize import count, format_bytes
from core.metrics import gauge

NAME = "replication_slots"
WAL_STATUSES = ("reserved", "extended", "unreserved", "lost")

PG_REPLICATION_SLOT_ACTIVE = gauge(
    "drwatch_pg_replication_slot_active",
    "1 if a consumer is connected to the slot.",
    "slot",
    "slot_type",
)
PG_REPLICATION_SLOT_RETAINED_BYTES = gauge(
    "drwatch_pg_replication_slot_retained_bytes",
    "WAL the slot holds back: from its restart_lsn to the current WAL position.",
    "slot",
)
PG_REPLICATION_SLOT_WAL_STATUS = gauge(
    "drwatch_pg_replication_slot_wal_status",
    "1 for the slot's wal_status (reserved, extended, unreserved, lost), 0 for the others.",
    "slot",
    "status",
)
PG_REPLICATION_SLOT_SAFE_WAL_BYTES = gauge(
    "drwatch_pg_replication_slot_safe_wal_bytes",
    "WAL that can still be written before the slot is lost (absent: no max_slot_wal_keep_size).",
    "slot",
)
PG_REPLICATION_SLOT_EXPOSURE_SECONDS = gauge(
    "drwatch_pg_replication_slot_exposure_seconds",
    "How long until the slot is lost at the current WAL rate (absent: no limit or no WAL).",
    "slot",
)
PG_REPLICATION_SLOTS_UNLABELLED = gauge(
    "drwatch_pg_replication_slots_unlabelled",
    "Slots beyond max_slots, without a label of their own.",
)
PG_REPLICATION_SLOTS_UNLABELLED_RETAINED_BYTES = gauge(
    "drwatch_pg_replication_slots_unlabelled_retained_bytes",
    "WAL held back by the slots beyond max_slots, summed.",
)
PG_REPLICATION_SLOT_RETAINED_BYTES_THRESHOLD = gauge(
    "drwatch_pg_replication_slot_retained_bytes_threshold",
    "The configured inactive_retained_bytes: an inactive slot holding more is a problem.",
)
PG_WAL_RATE_BYTES_PER_SECOND = gauge(
    "drwatch_pg_wal_rate_bytes_per_second",
    "WAL written per second between the last two runs.",
)

METRICS = (
    PG_REPLICATION_SLOT_ACTIVE,
    PG_REPLICATION_SLOT_RETAINED_BYTES,
    PG_REPLICATION_SLOT_WAL_STATUS,
    PG_REPLICATION_SLOT_SAFE_WAL_BYTES,
    PG_REPLICATION_SLOT_EXPOSURE_SECONDS,
    PG_REPLICATION_SLOTS_UNLABELLED,
    PG_REPLICATION_SLOTS_UNLABELLED_RETAINED_BYTES,
    PG_REPLICATION_SLOT_RETAINED_BYTES_THRESHOLD,
    PG_WAL_RATE_BYTES_PER_SECOND,
)

_POSITION_SQL = """
SELECT CASE WHEN pg_is_in_recovery()
            THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
            ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn AS position
"""
_SLOTS_SQL = """
SELECT slot_name, slot_type, active, wal_status, safe_wal_size,
       coalesce(pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery()
                THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                ELSE pg_current_wal_lsn() END,
           restart_lsn), 0) AS retained
FROM pg_replication_slots
ORDER BY retained DESC, slot_name
"""

Position = tuple[float, float]  # (monotonic seconds, WAL position in bytes)


class ReplicationSlotsCheck(Check[Position | None]):
    """Its state: the WAL position at the previous run, for the WAL rate."""

    def __init__(self, pg: PostgresConfig, options: ReplicationSlotsOptions) -> None:
        super().__init__(None)
        self.pg = pg
        self.options = options

    def run(self) -> Observation:
        with check_session(self.pg) as conn:
            position = float(fetch_one(conn, _POSITION_SQL, what="WAL position")["position"])
            slots = fetch_all(conn, _SLOTS_SQL, what="pg_replication_slots")
        now = time.monotonic()
        rate = None
        if self.state is not None and now > self.state[0] and position >= self.state[1]:
            rate = (position - self.state[1]) / (now - self.state[0])
        self.state = (now, position)
        obs = Observation(Status.OK, "")
        obs.add(PG_REPLICATION_SLOT_RETAINED_BYTES_THRESHOLD, self.options.inactive_retained_bytes)
        if rate is not None:
            obs.add(PG_WAL_RATE_BYTES_PER_SECOND, rate)
        labelled, rest = slots[: self.options.max_slots], slots[self.options.max_slots :]
        problems = [p for row in labelled if (p := self._slot(obs, row, rate))]
        obs.add(PG_REPLICATION_SLOTS_UNLABELLED, len(rest))
        obs.add(PG_REPLICATION_SLOTS_UNLABELLED_RETAINED_BYTES, sum(r["retained"] for r in rest))
        problems += [
            f"{len(bad)} more inactive slots beyond max_slots hold back too much WAL"
            for bad in [[r for r in rest if self._holds_too_much(r)]]
            if bad
        ]
        obs.values.update(slots=len(slots), inactive=sum(not r["active"] for r in slots))
        obs.status = Status.WARNING if problems else Status.OK
        if any(row["wal_status"] == "lost" for row in slots):
            obs.status = Status.CRITICAL
        summary = f"{count(len(slots), 'slot')}, {obs.values['inactive']} inactive"
        obs.summary = "; ".join([summary, *problems])
        return obs

    def _holds_too_much(self, row: Row) -> bool:
        retained = float(row["retained"])
        return not row["active"] and retained > self.options.inactive_retained_bytes

    def _slot(self, obs: Observation, row: Row, rate: float | None) -> str | None:
        slot = str(row["slot_name"])
        retained = float(row["retained"])
        obs.add(PG_REPLICATION_SLOT_ACTIVE, bool(row["active"]), slot=slot,
                slot_type=str(row["slot_type"]))  # fmt: skip
        obs.add(PG_REPLICATION_SLOT_RETAINED_BYTES, retained, slot=slot)
        for status in WAL_STATUSES:
            obs.add(PG_REPLICATION_SLOT_WAL_STATUS, row["wal_status"] == status, slot=slot,
                    status=status)  # fmt: skip
        safe = row["safe_wal_size"]
        if safe is not None:
            obs.add(PG_REPLICATION_SLOT_SAFE_WAL_BYTES, float(safe), slot=slot)
            if rate:
                exposure = max(0.0, float(safe)) / rate
                obs.add(PG_REPLICATION_SLOT_EXPOSURE_SECONDS, exposure, slot=slot)
        if row["wal_status"] == "lost":
            return f"slot {slot} is lost: its consumer can never catch up"
        if self._holds_too_much(row):
            until = ""
            if safe is not None and rate:
                until = f", lost in {format_duration(max(0.0, float(safe)) / rate)}"
            return f"inactive slot {slot} holds back {format_bytes(retained)}{until}"
        return None


def _plan(context: BuildContext) -> Planned | None:
    pg = context.target.postgres
    if pg is None or not pg.replication_slots.enabled:
        return None
    check = ReplicationSlotsCheck(pg, pg.replication_slots)
    return scheduled(check, pg.replication_slots, pg.interval, pg.timeout)


DEFINITION = CheckDef(
    name=NAME,
    section="postgres",
    source="`pg_replication_slots`",
    tells="per slot: active or not, the WAL it holds back, `wal_status` (lost: its consumer can "
    "never catch up), `safe_wal_size` and how long until the slot is lost at the WAL rate; an "
    "inactive slot holding back more than `inactive_retained_bytes` is a problem (labels capped "
    "at `max_slots`, the rest summed)",
    metrics=METRICS,
    scenarios=(),
    plan=_plan,
)
