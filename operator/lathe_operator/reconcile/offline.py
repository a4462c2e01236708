"""Batch and edge ModelDeployments: one job per generation, its report in the object store decides the outcome.

The job (a Kubernetes Job in a cluster, a process locally) runs ``lathe score`` or
``lathe bundle``; its run name comes from the object's uid and generation, so a restarted
operator finds the report instead of starting again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..api.v1alpha1.model_deployment import ModelDeployment
from .plan import Event

if TYPE_CHECKING:
    from .model_deployment import DeploymentPlan

POLL = 5.0


@dataclass(frozen=True)
class JobView:
    phase: Literal["Absent", "Running", "Failed", "Done"] = "Absent"
    report: dict[str, Any] | None = None
    message: str = ""
    rows: int | None = None  # progress of a batch run


@dataclass(frozen=True)
class DatasetView:
    exists: bool = False
    current_version: str | None = None


@dataclass(frozen=True)
class Start:
    run: str
    mode: Literal["batch", "edge"]
    dataset_version: str | None = None


def run_name(md: ModelDeployment) -> str:
    return f"{md.name[:40]}-{md.uid[:8]}-{md.generation}"


def terminal(md: ModelDeployment) -> bool:
    """This generation's run has ended (a missing model version is not an end: it may be registered yet)."""
    ready = next((c for c in md.status.conditions if c.type == "Ready"), None)
    return (md.spec.mode != "online" and md.status.observed_generation == md.generation
            and md.status.phase in ("Ready", "Failed") and ready is not None and ready.reason != "ModelNotFound")


def plan(md: ModelDeployment, job: JobView, dataset: DatasetView, update: dict[str, Any],
         result: DeploymentPlan) -> dict[str, Any]:
    mode = md.spec.mode
    assert mode in ("batch", "edge")
    run = run_name(md)
    version = None
    if mode == "batch":
        assert md.spec.batch is not None
        ref = md.spec.batch.dataset
        version = ref.version or dataset.current_version
        if version is None and job.phase == "Absent":
            result.requeue_after = POLL * 2
            reason = "DatasetNotReady" if dataset.exists else "DatasetNotFound"
            return dict(ready=False, progressing=True, degraded=False, reason=reason,
                        message=f"Dataset {ref.name} {'has no Ready version yet' if dataset.exists else 'does not exist'}")
    if job.phase == "Absent":
        result.start = Start(run, mode, version)
        what = f"scoring Dataset {md.spec.batch.dataset.name} {version}" if md.spec.batch else "building the edge bundle"
        result.events.append(Event("Normal", "Started", f"Run {run}: {what} with {md.spec.model.name} "
                                                        f"version {md.spec.model.version}"))
        result.requeue_after = POLL
        return dict(ready=False, progressing=True, degraded=False, reason="Running", message=f"Run {run} started")
    if job.phase == "Running":
        result.requeue_after = POLL
        if job.rows is not None:
            update["rows_scored"] = job.rows
        progress = f", {job.rows} rows scored" if job.rows is not None else ""
        return dict(ready=False, progressing=True, degraded=False, reason="Running",
                    message=f"Run {run} is running{progress}")
    report = job.report or {}
    if job.phase == "Done" and report.get("outcome") == "Succeeded":
        update.update(output_uri=report.get("uri"), output_bytes=report.get("bytes"))
        if mode == "batch":
            update["rows_scored"] = report.get("rows")
            message = (f"Scored {report.get('rows')} rows of {report.get('datasetVersion')} with version "
                       f"{report.get('modelVersion')}: {report.get('uri')}")
            return dict(ready=True, progressing=False, degraded=False, reason="Scored", message=message)
        delta = report.get("quantization", {}).get("accuracyDelta")
        extra = f"; int8 accuracy delta {delta:+.4f}" if isinstance(delta, (int, float)) else ""
        return dict(ready=True, progressing=False, degraded=False, reason="Bundled",
                    message=f"Edge bundle {report.get('uri')} ({report.get('bytes')} bytes){extra}")
    if job.phase == "Done":
        return dict(ready=False, progressing=False, degraded=True, reason=str(report.get("reason") or "RunFailed"),
                    message=str(report.get("message") or "the run failed")[:4000])
    return dict(ready=False, progressing=False, degraded=True, reason="RunFailed",
                message=f"Run {run} failed: {job.message}"[:4000])
