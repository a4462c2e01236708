"""Batch and edge ModelDeployments: one run per generation; its report in the object store decides the outcome.

The run (a Kubernetes Job in a cluster, a process locally) is ``lathe score`` or
``lathe bundle``; its name comes from the object's uid and generation, so a restarted
operator finds the report instead of starting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lathe_core.runs import RunRequest, RunState

from ..api.v1alpha1.model_deployment import ModelDeployment
from . import conditions as cond
from . import names
from .plan import MANAGED_BY, DatasetView, Event, Outcome, owner_reference

POLL = 5.0


@dataclass(frozen=True)
class OfflineOutcome(Outcome):
    start: RunRequest | None = None


def run_name(md: ModelDeployment) -> str:
    return names.child(md.name, 40, md.uid[:8], md.generation)


def run_request(md: ModelDeployment, dataset_version: str | None, recorded: str | None = None) -> RunRequest:
    """``lathe score`` or ``lathe bundle`` for this generation."""
    spec = md.spec
    args = [
        "score" if spec.mode == "batch" else "bundle",
        "--namespace",
        md.namespace,
        "--deployment",
        md.name,
        "--run",
        run_name(md),
        "--model",
        spec.model.name,
        "--model-version",
        str(spec.model.version),
    ]
    if spec.batch is not None:
        args += [
            "--dataset",
            spec.batch.dataset.name,
            "--dataset-version",
            str(dataset_version),
            "--chunk-rows",
            str(spec.batch.chunk_rows),
        ]
    if spec.edge is not None and spec.edge.quantize:
        args.append("--quantize")
    if recorded:  # the sha256 the model's TrainingRun recorded: the run refuses other bytes
        args += ["--model-sha256", recorded]
    labels = {**MANAGED_BY, "lathe.dev/model-deployment": md.name, "app.kubernetes.io/component": spec.mode}
    return RunRequest(
        namespace=md.namespace,
        name=run_name(md),
        component=spec.mode,
        args=tuple(args),
        labels=labels,
        resources=spec.resources.container(),
        owner=owner_reference(md),
        generation=md.generation,
    )


def decide(md: ModelDeployment, run: RunState, dataset: DatasetView, recorded: str | None = None) -> OfflineOutcome:
    """Start this generation's run, follow it, or read how it ended."""
    assert md.spec.mode in ("batch", "edge")
    name = run_name(md)
    version = None
    if md.spec.batch is not None:
        ref = md.spec.batch.dataset
        version = ref.version or dataset.current_version
        if version is None and run.phase == "Absent":
            reason = "DatasetNotReady" if dataset.exists else "DatasetNotFound"
            what = "has no Ready version yet" if dataset.exists else "does not exist"
            return OfflineOutcome(cond.working(reason, f"Dataset {ref.name} {what}"), requeue_after=POLL * 2)
    if run.phase == "Absent":
        what = (
            f"scoring Dataset {md.spec.batch.dataset.name} {version}" if md.spec.batch else "building the edge bundle"
        )
        started = Event(
            "Normal", "Started", f"Run {name}: {what} with {md.spec.model.name} version {md.spec.model.version}"
        )
        return OfflineOutcome(
            cond.working("Running", f"Run {name} started"),
            events=[started],
            requeue_after=POLL,
            start=run_request(md, version, recorded),
        )
    if run.phase == "Running":
        rows = run.progress.get("rows")
        progress = f", {rows} rows scored" if rows is not None else ""
        return OfflineOutcome(
            cond.working("Running", f"Run {name} is running{progress}"),
            {"rows_scored": rows} if rows is not None else {},
            requeue_after=POLL,
        )
    if run.phase == "Failed":
        return OfflineOutcome(cond.failed("RunFailed", f"Run {name} failed: {run.message}"))
    return _ended(md, run.report or {})


def _ended(md: ModelDeployment, report: dict[str, Any]) -> OfflineOutcome:
    if report.get("outcome") != "Succeeded":
        return OfflineOutcome(
            cond.failed(str(report.get("reason") or "RunFailed"), str(report.get("message") or "the run failed"))
        )
    update = {"output_uri": report.get("uri"), "output_bytes": report.get("bytes")}
    if md.spec.mode == "batch":
        message = (
            f"Scored {report.get('rows')} rows of {report.get('datasetVersion')} with version "
            f"{report.get('modelVersion')}: {report.get('uri')}"
        )
        return OfflineOutcome(cond.available("Scored", message), {**update, "rows_scored": report.get("rows")})
    quantization = report.get("quantization", {})
    delta, mae = quantization.get("accuracyDelta"), quantization.get("maeDelta")
    extra = f"; int8 accuracy delta {delta:+.4f}" if isinstance(delta, (int, float)) else ""
    extra = f"; int8 MAE delta {mae:+.4f}" if isinstance(mae, (int, float)) else extra
    return OfflineOutcome(
        cond.available("Bundled", f"Edge bundle {report.get('uri')} ({report.get('bytes')} bytes){extra}"), update
    )
