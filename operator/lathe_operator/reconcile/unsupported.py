"""The honest reconciler for kinds whose backend is not in this release yet.

It records that the object was seen (observedGeneration, conditions, an Event) and says
plainly that nothing will run, rather than pretending to succeed.
"""

from __future__ import annotations

from ..api.v1alpha1 import Resource
from . import conditions as cond
from .plan import Observed, Plan, transition_events


def plan(resource: Resource, observed: Observed, reason: str = "NotImplemented", message: str = "") -> Plan:
    status = resource.status
    message = (
        message or f"{resource.kind_name} reconciliation is not available in this Lathe release; nothing was started"
    )
    verdict = cond.Verdict(ready=False, progressing=False, degraded=False, reason=reason, message=message)
    new = cond.standard(status.conditions, verdict, generation=resource.generation, now=observed.now)
    updated = status.model_copy(
        update={"conditions": new, "observed_generation": resource.generation, "phase": cond.phase(new)}
    )
    return Plan(status=updated.dump(), events=transition_events(status.conditions, new))
