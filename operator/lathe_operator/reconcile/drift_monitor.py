"""DriftMonitor reconciler: one drift check per interval, its report folded into status.

A check is a run (``lathe drift``) named after the monitor, its generation and the
interval slot it covers, so a restarted operator finds the run (or its report) instead
of starting a second one. The window ends where the slot starts. The verdict sets the
conditions: Ready while the monitor works, Degraded while drift or low live accuracy
lasts, each change of verdict an Event. With ``action: retrain`` the loop in
``retrain`` answers each drift episode with at most one retrain.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_core.runs import RunRequest, RunState

from ..api.v1alpha1 import DriftMonitor
from ..api.v1alpha1.drift_monitor import DriftMonitorStatus, FeatureDrift
from . import conditions as cond
from . import names
from . import retrain as loop
from .plan import MANAGED_BY, DatasetView, Observed, Outcome, Plan, owner_reference, transition_events
from .schedule import seconds

POLL = 5.0
RETRY = 30.0
FEATURES = 50
NOTE = "; retrain"  # what follows it in the Ready message is the retrain's progress


@dataclass(frozen=True)
class DeploymentView:
    """What the monitor needs from its ModelDeployment: the model serving now."""

    exists: bool = False
    model: str | None = None
    version: int | None = None
    canary: loop.CanaryView = loop.CanaryView()


@dataclass
class DriftObserved(Observed):
    deployment: DeploymentView = DeploymentView()
    run: RunState = RunState("Absent")  # the watched check
    reference: DatasetView = DatasetView()  # spec.reference's Dataset, for its current version when unpinned
    source: DatasetView = DatasetView()  # spec.source.dataset's Dataset, likewise
    loop: loop.LoopObserved = field(default_factory=loop.LoopObserved)  # action retrain only


@dataclass
class DriftPlan(Plan):
    start: RunRequest | None = None
    retrain: loop.LoopStep = field(default_factory=loop.LoopStep)

    @property
    def empty(self) -> bool:
        step = self.retrain
        actions = (step.harvest, step.dataset, step.training_run, step.candidate)
        return super().empty and self.start is None and all(a is None for a in actions)


def _period(monitor: DriftMonitor) -> float:
    return max(seconds(monitor.spec.interval), 1.0)


def slot(monitor: DriftMonitor, now: datetime) -> int:
    return int(now.timestamp() // _period(monitor))


def run_name(monitor: DriftMonitor, now: datetime) -> str:
    return names.child(monitor.name, 36, monitor.uid[:8], monitor.generation, slot(monitor, now))


def window(monitor: DriftMonitor, now: datetime) -> tuple[datetime, datetime]:
    end = datetime.fromtimestamp(slot(monitor, now) * _period(monitor), UTC)
    return end - timedelta(seconds=seconds(monitor.spec.window.duration)), end


def request(monitor: DriftMonitor, observed: DriftObserved) -> RunRequest:
    """``lathe drift`` for this slot; what to compare travels as JSON in the environment."""
    now, deployment = observed.now, observed.deployment
    spec, (start, end) = monitor.spec, window(monitor, now)
    tests = spec.tests
    body: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": end.isoformat(), "minSamples": spec.window.min_samples},
        "tests": {
            "numeric": tests.numeric,
            "categorical": tests.categorical,
            "threshold": tests.threshold,
            "columns": {k: v.dump() for k, v in tests.columns.items()},
        },
        "correction": None if tests.correction == "none" else tests.correction,
        "driftShare": spec.drift_share,
        "accuracy": spec.accuracy.dump() if spec.accuracy else {},
        "reference": {
            "name": spec.reference.name,
            "version": spec.reference.version or observed.reference.current_version,
        }
        if spec.reference
        else None,
    }
    if spec.source.type == "dataset":
        assert spec.source.dataset is not None
        version = spec.source.dataset.version or observed.source.current_version
        body["source"] = {"type": "dataset", "name": spec.source.dataset.name, "version": version}
        if deployment.model:
            body["source"]["model"] = {"name": deployment.model, "version": deployment.version}
    else:
        body["source"] = {
            "type": "logs",
            "deployment": spec.deployment,
            "model": {"name": deployment.model, "version": deployment.version},
        }
    name = run_name(monitor, now)
    return RunRequest(
        namespace=monitor.namespace,
        name=name,
        component="drift",
        args=("drift", "--namespace", monitor.namespace, "--monitor", monitor.name, "--run", name),
        labels={**MANAGED_BY, "lathe.dev/drift-monitor": monitor.name, "app.kubernetes.io/component": "drift"},
        env={"LATHE_DRIFT_REQUEST": json.dumps(body, sort_keys=True)},
        owner=owner_reference(monitor),
        keep_seconds=3600,  # a check every few minutes: keep an hour of them, not a day
        generation=monitor.generation,
    )


def _next_slot(monitor: DriftMonitor, now: datetime) -> float:
    period = _period(monitor)
    return period - (now.timestamp() % period) + 1


def _finite(value: Any) -> float | None:
    """JSON (and so the API server) has no infinity or NaN: an unbounded score shows as absent."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _features(report: dict[str, Any]) -> list[FeatureDrift]:
    return [
        FeatureDrift(
            name=c["name"],
            test=c.get("test") or "",
            score=_finite(c.get("statistic")),
            p_value=_finite(c.get("pValue")),
            threshold=c.get("threshold"),
            drifted=bool(c.get("drifted")),
            status=c["status"],
        )
        for c in report.get("columns", [])[:FEATURES]
    ]


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _report(monitor: DriftMonitor, report: dict[str, Any], now: datetime) -> Outcome:
    later = _next_slot(monitor, now)
    if report.get("outcome") != "Succeeded":
        reason = str(report.get("reason") or "CheckFailed")
        return Outcome(
            cond.failed(reason, str(report.get("message") or "the check failed"), retrying=True), requeue_after=later
        )
    window_ = report.get("window") or {}
    update: dict[str, Any] = {
        "verdict": report["verdict"],
        "drift_share": report.get("driftShare"),
        "features": _features(report),
        "live_accuracy": report.get("liveAccuracy"),
        "live_mae": report.get("liveMae"),
        "labelled_samples": report.get("labelled"),
        "samples": report.get("samples"),
        "prediction_drifted": (report.get("prediction") or {}).get("drifted"),
        "window_start": _time(window_.get("start")),
        "window_end": _time(window_.get("end")),
        "reference": (report.get("reference") or {}).get("version"),
        "last_check": _time(report.get("finishedAt")) or now,
        "report_uri": report.get("page"),
    }
    message = str(report.get("message") or "")
    if report["verdict"] == "Drift":
        verdict = cond.available("DriftDetected", message, degraded=True)
    elif report.get("accuracyBelow"):
        minimum = monitor.spec.accuracy.min if monitor.spec.accuracy else 0
        verdict = cond.available("AccuracyBelowMinimum", f"{message}; below the minimum {minimum:g}", degraded=True)
    elif report["verdict"] == "InsufficientData":
        verdict = cond.available("InsufficientData", message)
    else:
        verdict = cond.available("NoDrift", message)
    return Outcome(verdict, update, requeue_after=later)


def _meanwhile(monitor: DriftMonitor, name: str) -> cond.Verdict:
    """While a check runs the last outcome stands (no Event each interval); the first check is Checking."""
    ready = cond.find(monitor.status.conditions, cond.READY)
    if ready is None:
        return cond.working("Checking", f"Check {name} is running")
    now = monitor.status.conditions
    return cond.Verdict(
        cond.is_true(now, cond.READY),
        cond.is_true(now, cond.PROGRESSING),
        cond.is_true(now, cond.DEGRADED),
        ready.reason,
        ready.message.split(NOTE)[0],
    )


def watched(monitor: DriftMonitor, now: datetime) -> str:
    """The check to look at: the one in flight (or last folded), else this slot's."""
    return monitor.status.check or run_name(monitor, now)


def decide(monitor: DriftMonitor, observed: DriftObserved) -> tuple[Outcome, RunRequest | None]:
    """Fold the watched check's report once it ends, then start the current slot's check if it is another."""
    deployment, run, now = observed.deployment, observed.run, observed.now
    if monitor.spec.deployment and not deployment.exists:
        failed = cond.failed(
            "DeploymentNotFound", f"ModelDeployment {monitor.spec.deployment} does not exist", retrying=True
        )
        return Outcome(failed, requeue_after=RETRY), None
    current, name = run_name(monitor, now), watched(monitor, now)
    if run.phase == "Running":
        return Outcome(_meanwhile(monitor, name), requeue_after=POLL), None
    if run.phase == "Absent":  # not started yet (or its process was lost with a restarted operator)
        start = request(monitor, observed)
        return Outcome(_meanwhile(monitor, start.name), {"check": start.name}, requeue_after=POLL), start
    if run.phase == "Failed":
        folded = Outcome(
            cond.failed("CheckFailed", f"Check {name} failed: {run.message}", retrying=True),
            requeue_after=_next_slot(monitor, now),
        )
    else:
        folded = _report(monitor, run.report or {}, now)
    if name == current:
        return folded, None
    start = request(monitor, observed)
    return Outcome(folded.verdict, {**folded.status, "check": start.name}, requeue_after=POLL), start


def _finding(run: RunState, served: int | None) -> str | None:
    """What a folded check found: drift or low accuracy (text), nothing (""), or no verdict (None).

    A check of a model no longer serving (one that began before a promotion) finds nothing new."""
    report = run.report or {}
    if run.phase != "Done" or report.get("outcome") != "Succeeded" or report.get("verdict") == "InsufficientData":
        return None
    checked = ((report.get("source") or {}).get("model") or {}).get("version")
    if checked is not None and served is not None and int(checked) != served:
        return None
    if report["verdict"] == "Drift":
        return f"DriftDetected: {report.get('message', '')}"
    if report.get("accuracyBelow"):
        return f"AccuracyBelowMinimum: live accuracy {report.get('liveAccuracy')}"
    return ""


def _with_note(verdict: cond.Verdict, step: loop.LoopStep) -> cond.Verdict:
    """The check's verdict, the retrain's progress after it; Progressing while a retrain is in flight."""
    if not step.note:
        return verdict
    records = step.status.get("retrains") or []
    progressing = records[-1].phase not in loop.DONE if records else verdict.progressing
    return replace(verdict, message=f"{verdict.message.split(NOTE)[0]}{NOTE} {step.note}", progressing=progressing)


def _soonest(*delays: float | None) -> float | None:
    found = [d for d in delays if d is not None]
    return min(found) if found else None


def plan(monitor: DriftMonitor, observed: DriftObserved) -> DriftPlan:
    status = monitor.status
    outcome, start = decide(monitor, observed)
    step = loop.LoopStep()
    if monitor.spec.action == "retrain" and observed.deployment.exists:
        report = observed.run.report or {}
        labelled = int(report.get("labelled") or status.labelled_samples or 0)
        step = loop.advance(
            monitor,
            observed.loop,
            _finding(observed.run, observed.deployment.version),
            watched(monitor, observed.now),
            labelled,
            observed.now,
        )
        outcome = Outcome(
            _with_note(outcome.verdict, step),
            {**outcome.status, **step.status},
            outcome.events + step.events,
            _soonest(outcome.requeue_after, step.requeue_after),
        )
    conditions = cond.standard(status.conditions, outcome.verdict, generation=monitor.generation, now=observed.now)
    cleared = {name for name, value in outcome.status.items() if value is None}  # a merge patch keeps the unmentioned
    new = status.model_copy(
        update={
            **outcome.status,
            "observed_generation": monitor.generation,
            "conditions": conditions,
            "phase": cond.phase(conditions),
        }
    )
    dumped = new.dump()
    for name in cleared:
        dumped[DriftMonitorStatus.model_fields[name].alias or name] = None
    events = outcome.events + transition_events(status.conditions, conditions)
    return DriftPlan(status=dumped, events=events, requeue_after=outcome.requeue_after, start=start, retrain=step)
