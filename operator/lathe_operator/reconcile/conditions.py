"""Ready / Progressing / Degraded conditions from one typed verdict, and the phase derived from them.

Follows the Kubernetes API conventions: a condition's lastTransitionTime changes only
when its status does, and each carries the generation it was computed from. Messages
are cut to the CRD's limit here, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api.v1alpha1 import MESSAGE_MAX, Condition, ConditionStatus, Phase

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

_TRUE, _FALSE = ConditionStatus.TRUE.value, ConditionStatus.FALSE.value


@dataclass(frozen=True)
class Verdict:
    """What a reconcile concluded, for all three conditions at once: one reason, one message."""

    ready: bool
    progressing: bool
    degraded: bool
    reason: str
    message: str


def available(reason: str, message: str, *, progressing: bool = False, degraded: bool = False) -> Verdict:
    """Serving its purpose (a published version, a registered model, live traffic)."""
    return Verdict(True, progressing, degraded, reason, message)


def working(reason: str, message: str, *, ready: bool = False) -> Verdict:
    """On its way: a run in flight, a dependency not there yet, a backend starting."""
    return Verdict(ready, True, False, reason, message)


def failed(reason: str, message: str, *, retrying: bool = False) -> Verdict:
    """Not ready and degraded; ``retrying`` when Lathe tries again by itself."""
    return Verdict(False, retrying, True, reason, message)


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    found = find(conditions, type_)
    return found is not None and found.status == _TRUE


def set_condition(
    conditions: list[Condition], type_: str, status: bool, reason: str, message: str, generation: int, now: datetime
) -> list[Condition]:
    """Return a new list with ``type_`` set; keeps lastTransitionTime if status is unchanged."""
    value = _TRUE if status else _FALSE
    old = find(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == value else now
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message[:MESSAGE_MAX],
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def standard(conditions: list[Condition], verdict: Verdict, *, generation: int, now: datetime) -> list[Condition]:
    """Set all three standard conditions from one verdict, sharing reason and message."""
    for type_, value in ((READY, verdict.ready), (PROGRESSING, verdict.progressing), (DEGRADED, verdict.degraded)):
        conditions = set_condition(conditions, type_, value, verdict.reason, verdict.message, generation, now)
    return sorted(conditions, key=lambda c: (c.type != READY, c.type))


def phase(conditions: list[Condition]) -> Phase:
    """One word for humans and dashboards; the conditions carry the detail."""
    if is_true(conditions, READY):
        return Phase.DEGRADED if is_true(conditions, DEGRADED) else Phase.READY
    if is_true(conditions, DEGRADED):
        return Phase.FAILED
    if is_true(conditions, PROGRESSING):
        return Phase.PROGRESSING
    return Phase.PENDING
