"""TrainingRun reconciler with plain values: waiting, pinning, one run per generation, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_core.runs import RunState as PipelineView
from lathe_operator.api.v1alpha1 import TrainingRun
from lathe_operator.reconcile import training_run as reconcile
from lathe_operator.reconcile.plan import DatasetView
from lathe_operator.reconcile.training_run import TrainingRunObserved

NOW = datetime(2026, 1, 1, tzinfo=UTC)
V1 = "sha256:" + "1" * 64
META = {"name": "mlp", "namespace": "ns", "uid": "abcdef12-3456", "generation": 1}
READY = DatasetView(exists=True, current_version=V1, target="label")


def make(status: dict[str, Any] | None = None) -> TrainingRun:
    return TrainingRun.model_validate(
        {
            "kind": "TrainingRun",
            "metadata": META,
            "status": status or {},
            "spec": {
                "dataset": {"name": "digits"},
                "model": {"name": "clf"},
                "gates": [{"metric": "accuracy", "min": 0.9}],
            },
        }
    )


def step(run: TrainingRun, **observed: Any) -> tuple[reconcile.TrainingRunPlan, TrainingRun]:
    plan = reconcile.plan(run, TrainingRunObserved(now=observed.pop("now", NOW), **observed))
    return plan, TrainingRun.model_validate({**run.dump(), "status": plan.status})


def ready(run: TrainingRun) -> tuple[str, str]:
    c = next(c for c in run.status.conditions if c.type == "Ready")
    return c.status, c.reason


def test_waits_for_the_dataset_and_degrades_when_it_never_appears() -> None:
    plan, waiting = step(make(), dataset=DatasetView(exists=False), created=NOW)
    assert (
        plan.submit is None and ready(waiting) == ("False", "DatasetNotFound") and waiting.status.phase == "Progressing"
    )
    _, late = step(waiting, dataset=DatasetView(exists=False), created=NOW, now=NOW + timedelta(minutes=6))
    assert late.status.phase == "Failed"
    _, unready = step(make(), dataset=DatasetView(exists=True), created=NOW)
    assert ready(unready) == ("False", "DatasetNotReady")


def test_submits_once_pins_the_version_and_plans_nothing_while_running() -> None:
    plan, started = step(make(), dataset=READY)
    assert plan.submit is not None and plan.submit.run == "mlp-abcdef12-1" and plan.submit.dataset_version == V1
    assert started.status.dataset_version == V1 and ready(started) == ("False", "Running")
    later = DatasetView(exists=True, current_version="sha256:" + "2" * 64)
    again, running = step(started, dataset=later, pipeline=PipelineView("Running"), now=NOW + timedelta(seconds=10))
    assert again.requeue_after == reconcile.POLL
    assert again.submit is None and again.empty and running.status == started.status  # the version stays pinned


def test_registered_and_gate_failed_outcomes_are_terminal() -> None:
    _, started = step(make(), dataset=READY)
    report = {
        "outcome": "Succeeded",
        "reason": "Registered",
        "version": 3,
        "uri": "s3://lathe/models/ns/clf/3/model.onnx",
        "sha256": "a" * 64,
        "metrics": {"accuracy": 0.97},
        "device": "cuda",
        "finishedAt": NOW.isoformat(),
        "gates": [{"metric": "accuracy", "value": 0.97, "min": 0.9, "passed": True}],
    }
    plan, done = step(started, dataset=READY, pipeline=PipelineView("Done", report))
    assert ready(done) == ("True", "Registered") and done.status.model is not None and done.status.model.version == 3
    assert "on cuda" in next(c for c in done.status.conditions if c.type == "Ready").message
    assert plan.requeue_after is None  # ended: not looked at again until the spec changes
    repeat, same = step(done, dataset=READY, pipeline=PipelineView("Done", report))
    assert repeat.empty and same.status == done.status
    failed = {
        **report,
        "outcome": "Failed",
        "reason": "GateFailed",
        "message": "accuracy = 0.8000, needs >= 0.9000",
        "gates": [{"metric": "accuracy", "value": 0.8, "min": 0.9, "passed": False}],
    }
    plan, gated = step(started, dataset=READY, pipeline=PipelineView("Done", failed))
    assert ready(gated) == ("False", "GateFailed") and gated.status.model is None and gated.status.phase == "Failed"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "GateFailed")]


def test_a_crashed_pipeline_without_a_report_fails_with_its_message() -> None:
    _, started = step(make(), dataset=READY)
    _, crashed = step(started, dataset=READY, pipeline=PipelineView("Failed", message="exit code 1: OOMKilled"))
    assert ready(crashed) == ("False", "PipelineFailed") and "OOMKilled" in crashed.status.conditions[0].message


def test_a_running_pipeline_says_which_epoch_it_has_reached() -> None:
    _, started = step(make(), dataset=READY)
    seen = PipelineView("Running", progress={"epoch": 3, "epochs": 20, "valAccuracy": 0.9123})
    plan, running = step(started, dataset=READY, pipeline=seen, now=NOW + timedelta(seconds=10))
    message = next(c.message for c in running.status.conditions if c.type == "Ready")
    assert message == "Pipeline run mlp-abcdef12-1 is running: training epoch 3 of 20 (validation accuracy 0.912)"
    assert plan.submit is None and ready(running) == ("False", "Running")
