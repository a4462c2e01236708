"""What a reconciler returns: children to ensure, the new status, and Events to record.

A Plan is data. The handlers layer applies it; applying the same plan twice is a no-op,
because children have deterministic names and creation is "create if absent".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api.v1alpha1 import Condition, Resource
from . import conditions as cond

MANAGED_BY = {"app.kubernetes.io/managed-by": "lathe"}


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event on the reconciled object."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Observed:
    """What the handlers layer saw before planning: existing children by (kind, name), and the time."""

    now: datetime
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def child(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get((kind, name))


@dataclass
class Plan:
    """Children to create if absent, the complete new status, Events, and when to look again."""

    status: dict[str, Any]
    create: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    @property
    def empty(self) -> bool:
        """Nothing to do in the world: no child to create, no Event to record."""
        return not self.create and not self.events


def owner_reference(resource: Resource) -> dict[str, Any]:
    """ownerReference that makes the garbage collector delete a child with its owner."""
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind_name,
        "name": resource.name,
        "uid": resource.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def transition_events(old: list[Condition], new: list[Condition]) -> list[Event]:
    """One Event when the Ready condition changes status or reason; a Warning while Degraded."""
    before, after = cond.find(old, cond.READY), cond.find(new, cond.READY)
    if after is None or (before is not None and (before.status, before.reason) == (after.status, after.reason)):
        return []
    degraded = cond.find(new, cond.DEGRADED)
    warning = degraded is not None and degraded.status == cond.T
    return [Event("Warning" if warning else "Normal", after.reason, after.message)]
