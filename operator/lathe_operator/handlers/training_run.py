"""kopf handlers for TrainingRun: one level-based reconcile from every trigger, and a timer for requeues."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf

from lathe_core import layout
from lathe_core.registry import ModelRegistry
from lathe_core.runs import RunState, read_progress
from lathe_core.store import StoreError
from lathe_pipelines import training

from .. import __version__, failpoints
from ..api.v1alpha1 import GROUP, VERSION, Dataset, TrainingRun
from ..backends.pipelines_kfp import PipelineBackendUnavailable
from ..reconcile import training_run as reconcile
from ..reconcile.plan import owner_reference
from ..reconcile.unsupported import plan as unsupported
from .apply import TICK, apply, exclusive, forget, now, parse, poll, reconciler, unavailable
from .views import dataset_view

PLURAL = TrainingRun.plural


def _lineage(memo: kopf.Memo, run: TrainingRun) -> dict[str, Any]:
    pipeline_yaml = training.compiled(run.spec.resources.dump(), caching=run.spec.pipeline.caching)
    return {
        "pipeline": {
            "name": "lathe-training",
            "specSha256": training.spec_hash(pipeline_yaml),
            "backend": run.spec.pipeline.backend or memo.config.pipeline_backend,
        },
        "image": memo.config.pipelines_image,
        "code": {"lathe": __version__, "revision": memo.config.code_revision},
    }


def _pipeline(backend: Any, run: TrainingRun, registry: ModelRegistry) -> RunState:
    """The run's report once it wrote one, else what the pipeline backend says."""
    name = reconcile.run_name(run)
    report = registry.report(name)
    if report is not None:
        return RunState("Done", report, run_id=run.status.run_id, run_url=run.status.run_url)
    state = backend.state(run.namespace, name, run.spec.pipeline.experiment)
    run_id = state.run_id or run.status.run_id
    progress = {}
    if state.phase == "Running":  # the epoch it has reached, for people watching
        progress = read_progress(registry.store, layout.training_progress(run.namespace, run.spec.model.name, name))
    return RunState(
        state.phase,
        None,
        state.message,
        run_id=run_id,
        run_url=backend.run_url(run_id) if run_id else None,
        progress=progress,
    )


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    with exclusive(memo, body.metadata.uid):
        _reconcile_locked(body, patch, memo, logger)


def _reconcile_locked(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    run: TrainingRun = parse(TrainingRun, body)
    backend_name = run.spec.pipeline.backend or memo.config.pipeline_backend
    backend = memo.pipelines.get(backend_name)
    if backend is None:
        plan = unsupported(
            run,
            reconcile.TrainingRunObserved(now=now()),
            reason="PipelineBackendUnavailable",
            message=f"Pipeline backend {backend_name!r} is not configured in this operator",
        )
        apply(plan, body, patch, memo.looks)
        return
    registry = ModelRegistry(memo.store, run.namespace, run.spec.model.name)
    try:
        created = body.metadata.get("creationTimestamp")
        dataset = dataset_view(memo, run.namespace, run.spec.dataset.name)
        waits = not reconcile.pinned(run, dataset)
        memo.dependents.wait(("Dataset", run.namespace, run.spec.dataset.name), run.uid, waiting=waits)
        observed = reconcile.TrainingRunObserved(
            now=now(),
            dataset=dataset,
            pipeline=RunState("Absent") if waits else _pipeline(backend, run, registry),
            created=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
        )
        plan = reconcile.plan(run, observed)
        if plan.submit is not None:
            name = plan.submit.run
            arguments = reconcile.pipeline_arguments(run, plan.submit, registry.report_key(name), _lineage(memo, run))
            run_id = backend.submit(
                run.namespace,
                name,
                arguments,
                reconcile.pipeline_settings(run),
                run.spec.pipeline.caching,
                run.spec.pipeline.experiment,
                owner=owner_reference(run),
            )
            plan.status.update(runId=run_id, **({"runUrl": url} if (url := backend.run_url(run_id)) else {}))
            logger.info("Started pipeline run %s", name)
            failpoints.hit("training-run.submitted")
    except (StoreError, PipelineBackendUnavailable) as error:
        raise unavailable(run, error, patch, memo.looks) from error
    apply(plan, body, patch, memo.looks)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("TrainingRun")
def reconcile_training_run(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, initial_delay=TICK)
async def poll_training_run(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, stopped: Any, **_: Any
) -> None:
    """Wait for the Dataset and follow the pipeline run until it ends, when the plan asked to."""
    await poll(reconcile_training_run, body, patch, memo, logger, stopped)


@kopf.on.event(GROUP, VERSION, Dataset.plural)
async def dataset_published(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A Dataset has a version: the TrainingRuns waiting for it look now, not at their next poll (up to 10 s)."""
    if (body.get("status") or {}).get("currentVersion"):
        for uid in memo.dependents.woken(("Dataset", body.metadata.namespace, body.metadata.name)):
            memo.looks.after(uid, 0)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_training_run(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    dataset = (body.get("spec") or {}).get("dataset") or {}
    memo.dependents.wait(("Dataset", body.metadata.namespace, dataset.get("name", "")), body.metadata.uid, False)
    forget(memo, body.metadata.uid)
