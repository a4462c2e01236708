"""TrainingRun reconciler: wait for the Dataset, pin its version, launch one pipeline run per generation, record the outcome.

The run name comes from the TrainingRun's uid and generation, so a restarted operator
looks the run up instead of launching a second one. The outcome is the run report the
pipeline's last step (or a failing step) writes to the object store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..api.v1alpha1 import TrainingRun
from ..api.v1alpha1.training_run import GateResult, RegisteredModel
from . import conditions as cond
from .plan import Event, Observed, Plan, transition_events

POLL = 10.0
DATASET_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class DatasetView:
    """What the TrainingRun needs from its Dataset object."""

    exists: bool
    ready: bool = False
    current_version: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class PipelineView:
    phase: Literal["Absent", "Running", "Failed", "Done"]
    report: dict[str, Any] | None = None
    message: str = ""
    run_id: str | None = None
    run_url: str | None = None


@dataclass
class TrainingRunObserved(Observed):
    dataset: DatasetView = DatasetView(exists=False)
    pipeline: PipelineView = PipelineView("Absent")
    created: datetime | None = None


@dataclass
class Submit:
    run: str
    dataset_version: str
    target: str


@dataclass
class TrainingRunPlan(Plan):
    submit: Submit | None = None


def run_name(run: TrainingRun) -> str:
    return f"{run.name[:40]}-{run.uid[:8]}-{run.generation}"


def terminal(run: TrainingRun) -> bool:
    """This generation's run has ended: nothing more to watch."""
    ready = cond.find(run.status.conditions, cond.READY)
    return (run.status.observed_generation == run.generation and run.status.completion_time is not None
            and ready is not None)


def plan(run: TrainingRun, observed: TrainingRunObserved) -> TrainingRunPlan:
    status, now = run.status, observed.now
    update: dict[str, Any] = {"observed_generation": run.generation}
    events: list[Event] = []
    submit = None
    version = status.dataset_version or run.spec.dataset.version
    pipeline = observed.pipeline
    if version is None and not (observed.dataset.ready and observed.dataset.current_version):
        waited = now - (observed.created or now)
        missing = not observed.dataset.exists
        reason = "DatasetNotFound" if missing else "DatasetNotReady"
        message = f"Dataset {run.spec.dataset.name} {'does not exist' if missing else 'has no Ready version yet'}"
        verdict: dict[str, Any] = dict(ready=False, progressing=True, degraded=missing and waited > DATASET_GRACE,
                                       reason=reason, message=message)
        requeue: float | None = POLL
    else:
        version = version or observed.dataset.current_version
        update["dataset_version"] = version
        if pipeline.phase == "Absent":
            submit = Submit(run_name(run), str(version), observed.dataset.target or "label")
            update.update(start_time=status.start_time or now)
            events.append(Event("Normal", "StartedPipeline", f"Started pipeline run {run_name(run)} on {version}"))
        if pipeline.run_id:
            update.update(run_id=pipeline.run_id, run_url=pipeline.run_url)
        verdict, requeue = _outcome(run, pipeline, update, now)
    conditions = cond.standard(status.conditions, generation=run.generation, now=now, **verdict)
    update.update(conditions=conditions, phase=cond.phase(conditions))
    new = status.model_copy(update=update)
    events += transition_events(status.conditions, conditions)
    return TrainingRunPlan(status=new.dump(), events=events, requeue_after=requeue, submit=submit)


def _outcome(run: TrainingRun, pipeline: PipelineView, update: dict[str, Any],
             now: datetime) -> tuple[dict[str, Any], float | None]:
    if pipeline.phase in ("Absent", "Running"):
        return dict(ready=False, progressing=True, degraded=False, reason="Running",
                    message=f"Pipeline run {run_name(run)} is running"), POLL
    report = pipeline.report or {}
    finished = report.get("finishedAt")
    update["completion_time"] = run.status.completion_time or (datetime.fromisoformat(finished) if finished else now)
    if report.get("metrics"):
        update["metrics"] = {k: round(float(v), 4) for k, v in report["metrics"].items()}  # the card keeps full precision
    if report.get("gates"):
        update["gates"] = [GateResult.model_validate(g) for g in report["gates"]]
    if pipeline.phase == "Done" and report.get("outcome") == "Succeeded":
        update["model"] = RegisteredModel(name=run.spec.model.name, version=int(report["version"]),
                                          uri=str(report["uri"]), sha256=str(report["sha256"]))
        return dict(ready=True, progressing=False, degraded=False, reason="Registered",
                    message=f"Registered {run.spec.model.name} version {report['version']} "
                            f"(accuracy {report['metrics'].get('accuracy', float('nan')):.4f}, on {report.get('device')})"), None
    if pipeline.phase == "Done":
        return dict(ready=False, progressing=False, degraded=True, reason=str(report.get("reason") or "PipelineFailed"),
                    message=str(report.get("message") or "the pipeline failed")[:4000]), None
    return dict(ready=False, progressing=False, degraded=True, reason="PipelineFailed",
                message=f"Pipeline run {run_name(run)} failed: {pipeline.message}"[:4000]), None


def pipeline_arguments(run: TrainingRun, submit: Submit, report_key: str, lineage: dict[str, Any]) -> dict[str, Any]:
    """The training pipeline's parameters for this run; ``lineage`` adds code, image and pipeline hash."""
    spec = run.spec
    return {
        "namespace": run.namespace,
        "dataset": spec.dataset.name,
        "dataset_version": submit.dataset_version,
        "target": submit.target,
        "model_name": spec.model.name,
        "model_type": spec.model.type,
        "hyperparameters": dict(spec.model.hyperparameters),
        "seed": spec.model.seed,
        "gates": [g.dump() for g in spec.gates],
        "baseline_version": spec.baseline_version or 0,
        "report_key": report_key,
        "lineage": {
            "run": {"id": submit.run, "trainingRun": run.name, "namespace": run.namespace, "uid": run.uid,
                    "generation": run.generation},
            "dataset": {"name": spec.dataset.name, "version": submit.dataset_version},
            "model": spec.model.dump(),
            "seed": spec.model.seed,
            **lineage,
        },
    }
