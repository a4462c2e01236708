"""TrainingRun reconciler: wait for the Dataset, pin its version, launch one pipeline run per generation, record the outcome.

The run name comes from the TrainingRun's uid and generation, so a restarted operator
looks the run up instead of launching a second one. The outcome is the run report the
pipeline's last step (or a failing step) writes to the object store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lathe_core.runs import RunState

from ..api.v1alpha1 import TrainingRun
from ..api.v1alpha1.training_run import GateResult, ModelSpec, RegisteredModel
from . import conditions as cond
from . import names
from .plan import DatasetView, Event, Observed, Outcome, Plan, transition_events

POLL = 10.0
DATASET_GRACE = timedelta(minutes=5)


@dataclass
class TrainingRunObserved(Observed):
    dataset: DatasetView = DatasetView()
    pipeline: RunState = RunState("Absent")  # the pipeline run: Done with its report, else the backend's view
    created: datetime | None = None


@dataclass
class Submit:
    run: str
    dataset_version: str
    target: str


@dataclass
class TrainingRunPlan(Plan):
    submit: Submit | None = None

    @property
    def empty(self) -> bool:
        return super().empty and self.submit is None


def run_name(run: TrainingRun) -> str:
    return names.child(run.name, 40, run.uid[:8], run.generation)


def pinned(run: TrainingRun, dataset: DatasetView) -> bool:
    """Whether the run has a data version to train on, so its pipeline run is worth asking after.

    While it waits for its Dataset nothing was submitted for this generation, and the
    pipeline backend is not asked (at a thousand waiting runs, that is a thousand calls a poll)."""
    return bool(run.status.dataset_version or run.spec.dataset.version or dataset.ready)


def plan(run: TrainingRun, observed: TrainingRunObserved) -> TrainingRunPlan:
    status, now = run.status, observed.now
    version = status.dataset_version or run.spec.dataset.version
    submit = None
    if not pinned(run, observed.dataset):
        outcome = _waiting(run, observed)
    else:
        version = version or observed.dataset.current_version
        pipeline = observed.pipeline
        outcome = _pipeline(run, pipeline, now)
        outcome.status["dataset_version"] = version
        if pipeline.phase == "Absent":
            submit = Submit(run_name(run), str(version), observed.dataset.target or "label")
            outcome.status["start_time"] = status.start_time or now
            outcome.events.append(
                Event("Normal", "StartedPipeline", f"Started pipeline run {run_name(run)} on {version}")
            )
        if pipeline.run_id:
            outcome.status.update(run_id=pipeline.run_id, run_url=pipeline.run_url)
    conditions = cond.standard(status.conditions, outcome.verdict, generation=run.generation, now=now)
    new = status.model_copy(
        update={
            **outcome.status,
            "observed_generation": run.generation,
            "conditions": conditions,
            "phase": cond.phase(conditions),
        }
    )
    events = outcome.events + transition_events(status.conditions, conditions)
    return TrainingRunPlan(status=new.dump(), events=events, requeue_after=outcome.requeue_after, submit=submit)


def _waiting(run: TrainingRun, observed: TrainingRunObserved) -> Outcome:
    """No Dataset version to train on yet; a missing Dataset degrades the run after a grace period."""
    missing = not observed.dataset.exists
    waited = observed.now - (observed.created or observed.now)
    message = f"Dataset {run.spec.dataset.name} {'does not exist' if missing else 'has no Ready version yet'}"
    verdict = cond.Verdict(
        ready=False,
        progressing=True,
        degraded=missing and waited > DATASET_GRACE,
        reason="DatasetNotFound" if missing else "DatasetNotReady",
        message=message,
    )
    return Outcome(verdict, requeue_after=POLL)


def _epoch(pipeline: RunState) -> str:
    """``: training epoch 3 of 20 (validation accuracy 0.912)`` once the train step reports one."""
    seen = pipeline.progress
    if not seen.get("epoch") or not seen.get("epochs"):
        return ""
    accuracy = seen.get("valAccuracy")
    figure = f" (validation accuracy {accuracy:.3f})" if isinstance(accuracy, int | float) else ""
    return f": training epoch {seen['epoch']} of {seen['epochs']}{figure}"


def _pipeline(run: TrainingRun, pipeline: RunState, now: datetime) -> Outcome:
    """Where the pipeline run stands, and what its report says once it has ended."""
    if pipeline.phase in ("Absent", "Running"):
        return Outcome(
            cond.working("Running", f"Pipeline run {run_name(run)} is running{_epoch(pipeline)}"), requeue_after=POLL
        )
    report = pipeline.report or {}
    finished = report.get("finishedAt")
    update: dict[str, Any] = {
        "completion_time": run.status.completion_time or (datetime.fromisoformat(finished) if finished else now)
    }
    if report.get("metrics"):
        update["metrics"] = {
            k: round(float(v), 4) for k, v in report["metrics"].items()
        }  # the card keeps full precision
    if report.get("gates"):
        update["gates"] = [GateResult.model_validate(g) for g in report["gates"]]
    if pipeline.phase == "Done" and report.get("outcome") == "Succeeded":
        update["model"] = RegisteredModel(
            name=run.spec.model.name,
            version=int(report["version"]),
            uri=str(report["uri"]),
            sha256=str(report["sha256"]),
        )
        accuracy = report["metrics"].get("accuracy", float("nan"))
        return Outcome(
            cond.available(
                "Registered",
                f"Registered {run.spec.model.name} version {report['version']} "
                f"(accuracy {accuracy:.4f}, on {report.get('device')})",
            ),
            update,
        )
    if pipeline.phase == "Done":
        return Outcome(
            cond.failed(
                str(report.get("reason") or "PipelineFailed"), str(report.get("message") or "the pipeline failed")
            ),
            update,
        )
    return Outcome(cond.failed("PipelineFailed", f"Pipeline run {run_name(run)} failed: {pipeline.message}"), update)


def pipeline_settings(run: TrainingRun) -> dict[str, Any]:
    """The training step's compile-time settings (kfp fixes a step's image, command and placement when the
    pipeline compiles): ``spec.resources``, and ``trainer`` when the team brings its own training code."""
    settings = run.spec.resources.dump()
    if run.spec.trainer is not None:
        settings["trainer"] = run.spec.trainer.dump()
    return settings


def _model_arguments(model: ModelSpec, trainer: bool = False) -> dict[str, Any]:
    """The pipeline's ``model_type`` and ``hyperparameters``: a PyTorch architecture and its knobs, or
    ``<framework>:<estimator>`` (sklearn, xgboost, lightgbm) and the estimator's parameters as JSON text: kfp carries a dict parameter as a
    protobuf Struct, whose numbers are all doubles, so max_depth 12 would arrive as 12.0 (which scikit-learn
    refuses) and max_features 1 (one feature) as 1.0 (every feature). A trainer container's run: ``trainer``."""
    if trainer:
        return {"model_type": "trainer", "hyperparameters": {}}
    if model.framework != "pytorch":
        parameters = json.dumps(model.parameters or {}, sort_keys=True)
        return {"model_type": f"{model.framework}:{model.classifier}", "hyperparameters": {"json": parameters}}
    return {"model_type": model.type, "hyperparameters": model.hyperparameters.dump()}


def _written(run: TrainingRun) -> dict[str, Any]:
    """The model as the card keeps it (and a retrain's TrainingRun is made from): a trainer's run has only the
    name and seed that the API server lets it have (the card keeps the trainer beside it)."""
    if run.spec.trainer is None:
        return run.spec.model.dump()
    return {"name": run.spec.model.name, "task": run.spec.model.task, "seed": run.spec.model.seed}


def pipeline_arguments(run: TrainingRun, submit: Submit, report_key: str, lineage: dict[str, Any]) -> dict[str, Any]:
    """The training pipeline's parameters for this run; ``lineage`` adds code, image and pipeline hash."""
    spec = run.spec
    return {
        "namespace": run.namespace,
        "dataset": spec.dataset.name,
        "dataset_version": submit.dataset_version,
        "target": submit.target,
        "model_name": spec.model.name,
        **_model_arguments(spec.model, trainer=spec.trainer is not None),
        "task": spec.model.task,
        "seed": spec.model.seed,
        "gates": [g.dump() for g in spec.gates],
        "baseline_version": spec.baseline_version or 0,
        "report_key": report_key,
        "lineage": {
            "run": {
                "id": submit.run,
                "trainingRun": run.name,
                "namespace": run.namespace,
                "uid": run.uid,
                "generation": run.generation,
            },
            "dataset": {"name": spec.dataset.name, "version": submit.dataset_version},
            "model": _written(run),
            **({"trainer": spec.trainer.dump()} if spec.trainer is not None else {}),
            "seed": spec.model.seed,
            **lineage,
        },
    }
