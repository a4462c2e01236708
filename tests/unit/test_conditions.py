"""Conditions keep lastTransitionTime until their status changes; phase follows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lathe_operator.api.v1alpha1 import Phase
from lathe_operator.reconcile import conditions as cond
from lathe_operator.reconcile.plan import transition_events

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def verdict(ready: bool, reason: str, now: datetime, degraded: bool = False, previous=None):  # type: ignore[no-untyped-def]
    chosen = cond.Verdict(ready, not ready and not degraded, degraded, reason, reason)
    return cond.standard(previous or [], chosen, generation=1, now=now)


def test_last_transition_time_moves_only_with_status() -> None:
    first = verdict(False, "Waiting", T0)
    same = verdict(False, "StillWaiting", T0 + timedelta(minutes=1), previous=first)
    assert cond.find(same, "Ready").last_transition_time == T0  # type: ignore[union-attr]
    done = verdict(True, "Done", T0 + timedelta(minutes=2), previous=same)
    assert cond.find(done, "Ready").last_transition_time == T0 + timedelta(minutes=2)  # type: ignore[union-attr]


def test_phase() -> None:
    assert cond.phase([]) == Phase.PENDING
    assert cond.phase(verdict(False, "Waiting", T0)) == Phase.PROGRESSING
    assert cond.phase(verdict(True, "Done", T0)) == Phase.READY
    assert cond.phase(verdict(False, "Broken", T0, degraded=True)) == Phase.FAILED


def test_events_on_ready_transitions_only() -> None:
    first = verdict(False, "Waiting", T0)
    assert [e.reason for e in transition_events([], first)] == ["Waiting"]
    assert transition_events(first, verdict(False, "Waiting", T0, previous=first)) == []
    failed = verdict(False, "Broken", T0, degraded=True, previous=first)
    assert [(e.type, e.reason) for e in transition_events(first, failed)] == [("Warning", "Broken")]


def test_messages_are_cut_to_the_crd_limit_in_one_place() -> None:
    long = cond.standard([], cond.failed("Broken", "x" * 10_000), generation=1, now=T0)
    assert {len(c.message) for c in long} == {cond.MESSAGE_MAX}


def test_verdict_constructors_name_the_three_shapes() -> None:
    assert cond.available("Done", "") == cond.Verdict(True, False, False, "Done", "")
    assert cond.working("Running", "") == cond.Verdict(False, True, False, "Running", "")
    assert cond.failed("Broken", "", retrying=True) == cond.Verdict(False, True, True, "Broken", "")
