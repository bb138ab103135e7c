"""Metric declarations: a sample is made through its declaration, with exactly its labels."""

from __future__ import annotations

import pytest

from checks.base import Observation, Status
from core.metrics import Families, LabelMismatch, counter, gauge

ROWS = gauge("drwatch_test_rows", "Rows.", "table")
DONE = counter("drwatch_test_done_total", "Done.")


def test_a_sample_carries_exactly_the_declared_labels() -> None:
    obs = Observation(Status.OK, "")
    obs.add(ROWS, 3, table="debates")
    assert obs.samples[0].values == ("debates",)
    with pytest.raises(LabelMismatch, match="drwatch_test_rows"):
        obs.add(ROWS, 3, tabel="debates")  # a typo fails where it is made
    with pytest.raises(LabelMismatch):
        obs.add(ROWS, 3)
    with pytest.raises(LabelMismatch):
        obs.add(DONE, 1, table="debates")
    obs.add(ROWS, None, table="debates")  # not measured: absent, never a stale number
    assert len(obs.samples) == 1


def test_families_take_only_their_declared_metrics() -> None:
    families = Families([ROWS], ("target",))
    families.add_sample(ROWS.sample(2, table="a"), "db")
    with pytest.raises(LabelMismatch, match="not declared"):
        families.add_sample(DONE.sample(1), "db")
    with pytest.raises(LabelMismatch, match="target"):
        families.add_sample(ROWS.sample(2, table="a"))
    (family,) = families.with_samples()
    assert [(s.labels, s.value) for s in family.samples] == [({"target": "db", "table": "a"}, 2)]


def test_empty_families_are_described_but_only_filled_ones_exposed() -> None:
    families = Families([ROWS, DONE])
    families.add(DONE, 4)
    assert [f.name for f in families] == ["drwatch_test_rows", "drwatch_test_done"]
    assert [f.name for f in families.with_samples()] == ["drwatch_test_done"]
