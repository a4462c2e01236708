"""Ready / Progressing / Degraded conditions and the phase derived from them.

Follows the Kubernetes API conventions: a condition's lastTransitionTime changes only
when its status does, and each carries the generation it was computed from.
"""

from __future__ import annotations

from datetime import datetime

from ..api.v1alpha1 import Condition, ConditionStatus, Phase

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

T, F = ConditionStatus.TRUE.value, ConditionStatus.FALSE.value


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Return a new list with ``type_`` set; keeps lastTransitionTime if status is unchanged."""
    old = find(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    return [c for c in conditions if c.type != type_] + [new]


def standard(
    conditions: list[Condition],
    *,
    ready: bool,
    progressing: bool,
    degraded: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Set all three standard conditions from one verdict, sharing reason and message."""
    for type_, value in ((READY, ready), (PROGRESSING, progressing), (DEGRADED, degraded)):
        conditions = set_condition(conditions, type_, T if value else F, reason, message, generation, now)
    return sorted(conditions, key=lambda c: (c.type != READY, c.type))


def phase(conditions: list[Condition]) -> Phase:
    """One word for humans and dashboards; the conditions carry the detail."""

    def true(type_: str) -> bool:
        c = find(conditions, type_)
        return c is not None and c.status == T

    if true(READY):
        return Phase.DEGRADED if true(DEGRADED) else Phase.READY
    if true(DEGRADED):
        return Phase.FAILED
    if true(PROGRESSING):
        return Phase.PROGRESSING
    return Phase.PENDING
