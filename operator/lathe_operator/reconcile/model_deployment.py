"""ModelDeployment reconciler: check the model versions exist, then serve online, score in batch or bundle for the edge.

Online, it decides the traffic split (``canary.decide``) and hands it to the serving
backend (a SeldonDeployment, or local model-server processes); the conditions follow
what the backend reports. Batch and edge run one job per generation (``offline``).
Each mode returns its ``Outcome``; ``plan`` composes it into the new status.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lathe_core.runs import RunRequest, RunState

from ..api.v1alpha1.model_deployment import CanaryStatus, Figures, Measured, ModelDeployment, StableStatus, TrafficSplit
from . import canary, manual, offline
from . import conditions as cond
from .plan import DatasetView, Observed, Outcome, Plan, transition_events

POLL = 5.0  # online serving is supervised: a dead local server restarts, a SeldonDeployment's state is read


@dataclass(frozen=True)
class ServingView:
    """What the serving backend reports for the current object."""

    state: Literal["Absent", "Creating", "Available", "Failed"] = "Absent"
    message: str = ""
    endpoint: str | None = None
    restarts: str = ""  # how often the servers restarted and how the last one ended; empty when never


@dataclass
class DeploymentObserved(Observed):
    missing: list[int] = field(default_factory=list)  # model versions the registry does not have
    serving: ServingView = ServingView()
    metrics: dict[int, canary.VersionMetrics] = field(default_factory=dict)
    metrics_error: str = ""  # why there are no figures although the analysis was due
    run: RunState = RunState("Absent")  # batch and edge: this generation's run
    dataset: DatasetView = DatasetView()  # batch: the Dataset it scores
    promoted: int | None = None  # the registry's promoted version of the model (the next gate's baseline)
    checksums: dict[int, str] = field(default_factory=dict)  # model.onnx sha256 by version, as TrainingRuns recorded


@dataclass(frozen=True)
class Serve:
    """The split the serving backend must apply now."""

    traffic: list[tuple[int, int]]
    shadow: int | None


@dataclass
class DeploymentPlan(Plan):
    serve: Serve | None = None
    start: RunRequest | None = None
    promote: int | None = None  # make this the registry's promoted version

    @property
    def empty(self) -> bool:  # serving the same split again changes nothing: only a run to start counts
        return super().empty and self.start is None and self.promote is None


@dataclass(frozen=True)
class OnlineOutcome(Outcome):
    serve: Serve | None = None
    promote: int | None = None


def versions(md: ModelDeployment) -> list[int]:
    """Every model version this object refers to."""
    spec = md.spec
    found = [spec.model.version]
    found += [spec.canary.version] if spec.canary else []
    found += [spec.shadow.version] if spec.shadow else []
    return sorted(set(found))


def desired(md: ModelDeployment, observed: DeploymentObserved) -> Serve:
    """The split to apply now (``plan`` makes the same decision and records it)."""
    decision = manual.decide(md, observed.now, observed.metrics)
    return Serve(decision.traffic, md.spec.shadow.version if md.spec.shadow else None)


def plan(md: ModelDeployment, observed: DeploymentObserved) -> DeploymentPlan:
    status = md.status
    serve, start, promote = None, None, None
    if observed.missing:
        names = ", ".join(str(v) for v in observed.missing)
        outcome = Outcome(
            cond.failed(
                "ModelNotFound",
                f"Model {md.spec.model.name} has no registered version {names} in namespace {md.namespace}",
            ),
            requeue_after=POLL * 3,
        )
    elif md.spec.mode == "online":
        outcome = online = _online(md, observed)
        serve, promote = online.serve, online.promote
    else:
        recorded = observed.checksums.get(md.spec.model.version)
        outcome = run = offline.decide(md, observed.run, observed.dataset, recorded)
        start = run.start
    conditions = cond.standard(status.conditions, outcome.verdict, generation=md.generation, now=observed.now)
    update: dict[str, Any] = {
        **outcome.status,
        "observed_generation": md.generation,
        "conditions": conditions,
        "phase": cond.phase(conditions),
    }
    new_status = status.model_copy(update=update).dump()
    if status.canary is not None and "canary" in update and update["canary"] is None:
        new_status["canary"] = None  # a merge patch keeps what it does not mention
    decided = {e.reason for e in outcome.events}  # a canary decision already says what the transition would
    events = outcome.events + [e for e in transition_events(status.conditions, conditions) if e.reason not in decided]
    return DeploymentPlan(
        promote=promote, status=new_status, events=events, requeue_after=outcome.requeue_after, serve=serve, start=start
    )


def _online(md: ModelDeployment, observed: DeploymentObserved) -> OnlineOutcome:
    decision = manual.decide(md, observed.now, observed.metrics)
    decision.canary = _measured(decision.canary, md, observed)
    waiting = decision.waiting
    if observed.metrics_error and waiting:
        waiting = f"waiting for metrics: {observed.metrics_error}"
    shadow = md.spec.shadow.version if md.spec.shadow else None
    update: dict[str, Any] = {
        "traffic": [TrafficSplit(version=v, percent=p) for v, p in decision.traffic],
        "serving": ",".join([f"{v}:{p}" for v, p in decision.traffic] + ([f"{shadow}:shadow"] if shadow else [])),
        "history": canary.trim(md.status.history, decision.history),
        "canary": decision.canary,
    }
    if decision.applied is not None:
        update["decision"] = decision.applied
    if observed.serving.endpoint:
        update["endpoint"] = observed.serving.endpoint
    stable = _stable(md, decision)
    update["stable"] = StableStatus(version=stable, spec_version=md.spec.model.version)
    requeue = min(decision.requeue or POLL, POLL)
    verdict = _serving_verdict(md, observed.serving, decision, waiting)
    promote = _promotion(decision, stable, observed)
    return OnlineOutcome(
        verdict, update, list(decision.events), requeue, serve=Serve(decision.traffic, shadow), promote=promote
    )


def _measured(state: CanaryStatus | None, md: ModelDeployment, observed: DeploymentObserved) -> CanaryStatus | None:
    """The canary status with the figures this reconcile read, for people and ``kubectl lathe get md``."""
    seen = observed.metrics.get(state.version) if state is not None else None
    if state is None or seen is None:
        return state
    stable = observed.metrics.get(canary.stable_version(md))
    figures = Measured(
        time=observed.now,
        candidate=Figures(**vars(seen)),
        stable=Figures(**vars(stable)) if stable is not None else None,
    )
    return state.model_copy(update={"measured": figures})


def _stable(md: ModelDeployment, decision: canary.Decision) -> int:
    """After this decision: the one it chose (an undo), the candidate it promoted, else the stable version so far."""
    if decision.stable is not None:
        return decision.stable
    state = decision.canary
    if state is not None and any(e.reason == "CanaryPromoted" for e in decision.events):
        return state.version
    return canary.stable_version(md)


def _promotion(decision: canary.Decision, stable: int, observed: DeploymentObserved) -> int | None:
    """Promote in the registry when a canary is promoted, or when the model has no promoted version yet.

    Only then: two deployments of one model serving different versions must not take turns."""
    if observed.promoted == stable:
        return None
    if decision.stable is not None or any(e.reason == "CanaryPromoted" for e in decision.events):
        return stable
    return stable if observed.promoted is None and observed.serving.state == "Available" else None


def _serving_verdict(
    md: ModelDeployment, serving: ServingView, decision: canary.Decision, waiting: str
) -> cond.Verdict:
    if serving.state == "Failed":
        return cond.failed("ServingFailed", serving.message)
    if serving.state != "Available":
        return cond.working("Creating", serving.message or "waiting for the model servers")
    verdict = _available(md, serving, decision, waiting)
    return replace(verdict, message=f"{verdict.message}; {serving.restarts}") if serving.restarts else verdict


def _available(md: ModelDeployment, serving: ServingView, decision: canary.Decision, waiting: str) -> cond.Verdict:
    split = ", ".join(f"version {v} {p}%" for v, p in decision.traffic)
    state = decision.canary
    if md.spec.traffic is not None:
        return cond.available("TrafficOverride", f"Serving {split} as set in spec.traffic")
    if state is None:
        return cond.available("Available", f"Serving {split}")
    if state.phase == "Progressing":
        return cond.available("CanaryProgressing", f"Serving {split}; {waiting or 'analysing'}", progressing=True)
    if state.phase == "Promoted":
        return cond.available("CanaryPromoted", f"Version {state.version} promoted; serving {split}")
    last = next((h for h in reversed(md.status.history + decision.history) if h.action == "Rollback"), None)
    return cond.available(
        "CanaryRolledBack",
        f"Version {state.version} rolled back ({last.reason if last else 'failed analysis'}); serving {split}",
        degraded=True,
    )
