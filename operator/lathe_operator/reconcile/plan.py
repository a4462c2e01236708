"""What a reconciler returns: the new status, Events, actions in domain words, and when to look again.

A Plan is data. The handlers layer applies it; applying the same plan twice is a no-op,
because runs and children have deterministic names and starting is "start if absent".
The ``Outcome`` of one part of a reconcile (a mode, a run's end) is data too: the
reconciler composes outcomes instead of filling in its caller's arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..api.v1alpha1 import Condition, Resource
from . import conditions as cond
from .conditions import Verdict

MANAGED_BY = {"app.kubernetes.io/managed-by": "lathe"}
EVENT_MAX = 1024  # events.k8s.io/v1 note limit


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event on the reconciled object."""

    type: str  # Normal | Warning
    reason: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", self.message[:EVENT_MAX])


@dataclass
class Observed:
    """What the handlers layer saw before planning; each kind adds its own observations."""

    now: datetime


@dataclass(frozen=True)
class DatasetView:
    """What TrainingRuns and batch ModelDeployments need from a Dataset object."""

    exists: bool = False
    current_version: str | None = None
    target: str | None = None

    @property
    def ready(self) -> bool:
        return self.current_version is not None


@dataclass(frozen=True)
class Outcome:
    """What one part of a reconcile decided: the verdict, status fields to set, Events, when to look again."""

    verdict: Verdict
    status: dict[str, Any] = field(default_factory=dict)  # field name (snake_case) -> value
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


@dataclass
class Plan:
    """The complete new status, Events, and when to look again (None: only when the object changes)."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    @property
    def empty(self) -> bool:
        """Nothing to do in the world. Kinds with actions (start a run, serve) add theirs."""
        return not self.events


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
    warning = cond.is_true(new, cond.DEGRADED)
    return [Event("Warning" if warning else "Normal", after.reason, after.message)]
