"""Decisions taken by hand (lathe.dev/decision): applied once, recorded like automatic ones, refused with a reason."""

from __future__ import annotations

import json
from datetime import timedelta

from lathe_operator.api.v1alpha1 import ModelDeployment
from lathe_operator.reconcile.manual import DECISION
from tests.unit.test_reconcile_model_deployment import CANARY, GOOD, NOW, make, ready, step, traffic


def decide(md: ModelDeployment, action: str, id: str, by: str = "alice") -> ModelDeployment:
    body = md.dump()
    body["metadata"]["annotations"] = {DECISION: json.dumps({"id": id, "action": action, "by": by})}
    return ModelDeployment.model_validate(body)


def reasons(plan: object) -> list[str]:
    return [e.reason for e in plan.events]  # type: ignore[attr-defined]


def refused(plan: object) -> str:
    return next(e.message for e in plan.events if e.reason == "DecisionRefused")  # type: ignore[attr-defined]


def started() -> ModelDeployment:
    _, md = step(make({"canary": CANARY}))
    assert traffic(md) == [(3, 90), (4, 10)] and md.status.canary and md.status.canary.baseline == 3
    return md


def test_promote_moves_one_step_now_and_records_who_decided_once() -> None:
    plan, md = step(decide(started(), "promote", "d1"), NOW + timedelta(seconds=5))
    assert traffic(md) == [(3, 50), (4, 50)] and md.status.decision == "d1"
    assert reasons(plan) == ["CanaryStep"] and "by hand (alice)" in plan.events[0].message
    last = md.status.history[-1]
    assert (last.action, last.percent, last.by) == ("Step", 50, "alice") and "alice" in last.reason
    again, md = step(md, NOW + timedelta(seconds=6))  # the annotation is still there: applied once only
    assert traffic(md) == [(3, 50), (4, 50)] and "CanaryStep" not in reasons(again)
    plan, md = step(decide(md, "promote", "d2"), NOW + timedelta(seconds=7))
    assert traffic(md) == [(4, 100)] and reasons(plan)[0] == "CanaryPromoted" and plan.promote == 4


def test_promote_full_and_abort() -> None:
    plan, promoted = step(decide(started(), "promote-full", "f1"), NOW + timedelta(seconds=5))
    assert traffic(promoted) == [(4, 100)] and promoted.status.canary.phase == "Promoted" and plan.promote == 4
    assert promoted.status.stable and promoted.status.stable.version == 4
    plan, aborted = step(decide(started(), "abort", "a1"), NOW + timedelta(seconds=5))
    assert traffic(aborted) == [(3, 100)] and aborted.status.canary.phase == "RolledBack"
    assert reasons(plan)[0] == "CanaryRolledBack" and ready(aborted) == ("True", "CanaryRolledBack")
    assert aborted.status.history[-1].by == "alice"
    # the analysis does not restart it: an abort holds until spec changes
    _, later = step(aborted, NOW + timedelta(minutes=5), metrics={4: GOOD})
    assert traffic(later) == [(3, 100)]


def test_undo_returns_to_the_baseline_in_serving_status_and_registry() -> None:
    _, promoted = step(decide(started(), "promote-full", "f1"), NOW + timedelta(seconds=5))
    plan, undone = step(decide(promoted, "undo", "u1", by="bob"), NOW + timedelta(seconds=9), promoted=4)
    assert traffic(undone) == [(3, 100)] and undone.status.stable and undone.status.stable.version == 3
    assert reasons(plan)[0] == "PromotionUndone" and plan.promote == 3 and undone.status.decision == "u1"
    assert undone.status.history[-1].by == "bob" and undone.status.canary.phase == "RolledBack"
    _, later = step(undone, NOW + timedelta(minutes=5), promoted=3)
    assert traffic(later) == [(3, 100)]


def test_refusals_change_nothing_and_say_why() -> None:
    md = started()
    plan, same = step(decide(md, "undo", "u1"), NOW + timedelta(seconds=5))
    assert traffic(same) == [(3, 90), (4, 10)] and reasons(plan) == ["DecisionRefused"]
    assert "no promotion to undo" in plan.events[0].message and same.status.decision == "u1"
    plan, _ = step(decide(make(), "promote", "p1"))
    assert "there is no canary" in refused(plan)
    plan, _ = step(decide(md, "explode", "x1"), NOW + timedelta(seconds=5))
    assert "unknown action 'explode'" in refused(plan)
    body = md.dump()
    body["metadata"]["annotations"] = {DECISION: "{not json"}
    plan, bad = step(ModelDeployment.model_validate(body), NOW + timedelta(seconds=5))
    assert reasons(plan) == ["DecisionRefused"] and bad.status.decision.startswith("malformed-")
    again, _ = step(bad, NOW + timedelta(seconds=6))
    assert "DecisionRefused" not in reasons(again)
    _, overridden = step(make({"canary": CANARY, "traffic": [{"version": 3, "percent": 100}]}))
    plan, _ = step(decide(overridden, "promote", "o1"))
    assert "spec.traffic" in refused(plan)
