"""ModelDeployment reconciler: check the model versions exist, then serve online, score in batch or bundle for the edge.

Online, it decides the traffic split (``canary.decide``) and hands it to the serving
backend (a SeldonDeployment, or local model-server processes); the conditions follow
what the backend reports. Batch and edge run one job per generation (``offline``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..api.v1alpha1.model_deployment import ModelDeployment, TrafficSplit
from . import canary, offline
from . import conditions as cond
from .plan import Event, Observed, Plan, transition_events

POLL = 10.0


@dataclass(frozen=True)
class ServingView:
    """What the serving backend reports for the current object."""

    state: Literal["Absent", "Creating", "Available", "Failed"] = "Absent"
    message: str = ""
    endpoint: str | None = None


@dataclass
class DeploymentObserved(Observed):
    missing: list[int] = field(default_factory=list)  # model versions the registry does not have
    serving: ServingView = ServingView()
    metrics: dict[int, canary.VersionMetrics] = field(default_factory=dict)
    metrics_error: str = ""  # why there are no figures although the analysis was due
    job: offline.JobView = offline.JobView()
    dataset: offline.DatasetView = offline.DatasetView()


@dataclass(frozen=True)
class Serve:
    """The split the serving backend must apply now."""

    traffic: list[tuple[int, int]]
    shadow: int | None


@dataclass
class DeploymentPlan(Plan):
    serve: Serve | None = None
    start: offline.Start | None = None


def versions(md: ModelDeployment) -> list[int]:
    """Every model version this object refers to."""
    spec = md.spec
    found = [spec.model.version]
    found += [spec.canary.version] if spec.canary else []
    found += [spec.shadow.version] if spec.shadow else []
    return sorted(set(found))


def desired(md: ModelDeployment, observed: DeploymentObserved) -> Serve:
    """The split to apply now (``plan`` makes the same decision and records it)."""
    decision = canary.decide(md, observed.now, observed.metrics)
    return Serve(decision.traffic, md.spec.shadow.version if md.spec.shadow else None)


def plan(md: ModelDeployment, observed: DeploymentObserved) -> DeploymentPlan:
    status = md.status
    update: dict[str, Any] = {"observed_generation": md.generation}
    result = DeploymentPlan(status={})
    if observed.missing:
        names = ", ".join(str(v) for v in observed.missing)
        verdict: dict[str, Any] = dict(ready=False, progressing=False, degraded=True, reason="ModelNotFound",
                                       message=f"Model {md.spec.model.name} has no registered version {names} in "
                                               f"namespace {md.namespace}")
        result.requeue_after = POLL * 3
    elif md.spec.mode == "online":
        verdict = _online(md, observed, update, result)
    else:
        verdict = offline.plan(md, observed.job, observed.dataset, update, result)
    conditions = cond.standard(status.conditions, generation=md.generation, now=observed.now, **verdict)
    update.update(conditions=conditions, phase=cond.phase(conditions))
    result.status = status.model_copy(update=update).dump()
    if status.canary is not None and "canary" in update and update["canary"] is None:
        result.status["canary"] = None  # a merge patch keeps what it does not mention
    decided = {e.reason for e in result.events}  # a canary decision already says what the transition would
    result.events += [e for e in transition_events(status.conditions, conditions) if e.reason not in decided]
    return result


def _online(md: ModelDeployment, observed: DeploymentObserved, update: dict[str, Any],
            result: DeploymentPlan) -> dict[str, Any]:
    decision = canary.decide(md, observed.now, observed.metrics)
    if observed.metrics_error and decision.waiting:
        decision.waiting = f"waiting for metrics: {observed.metrics_error}"
    shadow = md.spec.shadow.version if md.spec.shadow else None
    result.serve = Serve(decision.traffic, shadow)
    result.events += decision.events
    update.update(traffic=[TrafficSplit(version=v, percent=p) for v, p in decision.traffic],
                  serving=",".join([f"{v}:{p}" for v, p in decision.traffic] + ([f"{shadow}:shadow"] if shadow else [])),
                  history=canary.trim(md.status.history, decision.history), canary=decision.canary)
    serving = observed.serving
    if serving.endpoint:
        update["endpoint"] = serving.endpoint
    result.requeue_after = decision.requeue
    if serving.state == "Failed":
        return dict(ready=False, progressing=False, degraded=True, reason="ServingFailed", message=serving.message)
    if serving.state != "Available":
        result.requeue_after = min(result.requeue_after or POLL, POLL)
        return dict(ready=False, progressing=True, degraded=False, reason="Creating",
                    message=serving.message or "waiting for the model servers")
    split = ", ".join(f"version {v} {p}%" for v, p in decision.traffic)
    state = decision.canary
    if md.spec.traffic is not None:
        return dict(ready=True, progressing=False, degraded=False, reason="TrafficOverride",
                    message=f"Serving {split} as set in spec.traffic")
    if state is None:
        return dict(ready=True, progressing=False, degraded=False, reason="Available", message=f"Serving {split}")
    if state.phase == "Progressing":
        return dict(ready=True, progressing=True, degraded=False, reason="CanaryProgressing",
                    message=f"Serving {split}; {decision.waiting or 'analysing'}")
    if state.phase == "Promoted":
        return dict(ready=True, progressing=False, degraded=False, reason="CanaryPromoted",
                    message=f"Version {state.version} promoted; serving {split}")
    last = next((h for h in reversed(md.status.history + decision.history) if h.action == "Rollback"), None)
    return dict(ready=True, progressing=False, degraded=True, reason="CanaryRolledBack",
                message=f"Version {state.version} rolled back ({last.reason if last else 'failed analysis'}); "
                        f"serving {split}"[:4000])


__all__ = ["DeploymentObserved", "DeploymentPlan", "Event", "Serve", "ServingView", "plan", "versions"]
