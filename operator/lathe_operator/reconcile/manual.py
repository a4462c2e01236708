"""Decisions taken by hand: ``kubectl lathe promote|abort|undo`` on a canary.

The plugin writes the ``lathe.dev/decision`` annotation, ``{"id", "action", "by", "at"}``:
metadata, so spec stays what Git says. The operator applies each id once, records it in
``status.decision``, and writes the Event and ``status.history`` entry an automatic decision
would, naming who decided. A decision it cannot apply is refused with a Warning Event that
says why, and changes nothing.

- ``promote``: the canary moves to its next step now (the last step promotes);
- ``promote-full``: the canary is promoted to 100% now;
- ``abort``: all traffic returns to the stable version, as a failed analysis would;
- ``undo``: a promoted canary is undone: its baseline serves again and is the stable version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from ..api.v1alpha1.model_deployment import ModelDeployment
from . import canary
from .plan import Event

DECISION = "lathe.dev/decision"
ACTIONS = ("promote", "promote-full", "abort", "undo")


@dataclass(frozen=True)
class Manual:
    id: str
    action: str
    by: str


def pending(md: ModelDeployment) -> Manual | None:
    """The decision in the annotation that status does not record yet; a malformed one is refused."""
    text = (md.metadata.get("annotations") or {}).get(DECISION)
    if not text:
        return None
    try:
        found = json.loads(text)
        wanted = Manual(str(found["id"])[:64], str(found.get("action", "")), str(found.get("by") or "unknown")[:253])
    except (ValueError, TypeError, KeyError):
        wanted = Manual(f"malformed-{hashlib.sha256(text.encode()).hexdigest()[:16]}", "malformed", "unknown")
    return None if wanted.id == md.status.decision else wanted


def refusal(md: ModelDeployment, wanted: Manual) -> str | None:
    """Why ``wanted`` cannot be applied to the object as it stands, or None."""
    if wanted.action not in ACTIONS:
        return f"unknown action {wanted.action!r} (one of {', '.join(ACTIONS)}) in annotation {DECISION}"
    if md.spec.traffic is not None:
        return "spec.traffic sets the split by hand; remove it from spec to let the canary move"
    state, spec = md.status.canary, md.spec.canary
    if spec is None or state is None:
        return "there is no canary: spec.canary is not set and no lathe.dev/canary-version annotation offers one"
    if state.version != spec.version:
        return f"the canary is version {spec.version} but status has not started it yet; try again"
    if wanted.action == "undo":
        if state.phase != "Promoted" or state.baseline is None:
            return f"there is no promotion to undo: canary version {state.version} is {state.phase}"
        if canary.stable_version(md) != state.version:
            return f"spec.model.version changed to {md.spec.model.version} since the promotion; change it in Git"
        return None
    if state.phase != "Progressing":
        return f"canary version {state.version} is not in progress: it is {state.phase}"
    return None


def decide(md: ModelDeployment, now: datetime, metrics: dict[int, canary.VersionMetrics]) -> canary.Decision:
    """The split to serve now: a pending decision by hand applied (or refused), else the canary's own."""
    wanted = pending(md)
    if wanted is None:
        return canary.decide(md, now, metrics)
    why = refusal(md, wanted)
    if why is not None:
        decision = canary.decide(md, now, metrics)
        decision.events.append(Event("Warning", "DecisionRefused", f"{wanted.action} by {wanted.by} refused: {why}"))
    else:
        decision = _apply(md, wanted, now)
    decision.applied = wanted.id
    return decision


def _apply(md: ModelDeployment, wanted: Manual, now: datetime) -> canary.Decision:
    state = md.status.canary
    assert state is not None and md.spec.canary is not None
    by, stable = wanted.by, canary.stable_version(md)
    if wanted.action == "promote":
        return canary.step(md, state, now, f"promoted by hand by {by}", by)
    if wanted.action == "promote-full":
        decision = canary.Decision(canary.split(stable, state), state)
        return canary.promote(decision, state, now, f"promoted to 100% by hand by {by}", by)
    if wanted.action == "abort":
        return canary.roll_back(md, state, now, f"aborted by hand by {by}", by)
    assert state.baseline is not None  # undo: refusal() checked
    baseline = state.baseline
    rolled = state.model_copy(update={"percent": 0, "phase": "RolledBack", "since": now, "generation": md.generation})
    reason = f"promotion undone by hand by {by}: version {baseline} serves again"
    decision = canary.Decision([(baseline, 100)], rolled, stable=baseline)
    decision.history.append(canary.entry(now, "Rollback", state.version, 0, reason, by))
    decision.events.append(
        Event("Warning", "PromotionUndone", f"Version {state.version} undone by hand ({by}): version {baseline} serves")
    )
    return decision
