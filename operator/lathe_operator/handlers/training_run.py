"""kopf handlers for TrainingRun: one level-based reconcile from every trigger, and a poll while the run is live."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf

from lathe_pipelines import training
from lathe_pipelines.models import ModelRegistry

from .. import __version__
from ..api.v1alpha1 import GROUP, VERSION, TrainingRun
from ..backends.pipelines_kfp import PipelineBackendUnavailable
from ..backends.ports import StoreError
from ..reconcile import training_run as reconcile
from ..reconcile.plan import Plan
from ..reconcile.unsupported import plan as unsupported
from .apply import apply, now, parse, reconciler, unavailable

PLURAL = TrainingRun.plural


def _dataset(memo: kopf.Memo, run: TrainingRun) -> reconcile.DatasetView:
    found = memo.kube.get(f"{GROUP}/{VERSION}", "Dataset", run.namespace, run.spec.dataset.name)
    if found is None:
        return reconcile.DatasetView(exists=False)
    status, spec = found.get("status") or {}, found.get("spec") or {}
    return reconcile.DatasetView(exists=True, ready=bool(status.get("currentVersion")),
                                 current_version=status.get("currentVersion"), target=spec.get("target"))


def _lineage(memo: kopf.Memo, run: TrainingRun) -> dict[str, Any]:
    pipeline_yaml = training.compile_yaml(training.build(run.spec.resources.dump(), caching=run.spec.pipeline.caching))
    return {"pipeline": {"name": "lathe-training", "specSha256": training.spec_hash(pipeline_yaml),
                         "backend": run.spec.pipeline.backend or memo.config.pipeline_backend},
            "image": memo.config.pipelines_image,
            "code": {"lathe": __version__, "revision": memo.config.code_revision}}


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    run: TrainingRun = parse(TrainingRun, body)
    backend_name = run.spec.pipeline.backend or memo.config.pipeline_backend
    backend = memo.pipelines.get(backend_name)
    if backend is None:
        plan: Plan = unsupported(run, reconcile.TrainingRunObserved(now=now()),
                                 reason="PipelineBackendUnavailable",
                                 message=f"Pipeline backend {backend_name!r} is not configured in this operator")
        apply(plan, body, patch, memo.kube, logger)
        return
    name = reconcile.run_name(run)
    registry = ModelRegistry(memo.store, run.namespace, run.spec.model.name)
    experiment = run.spec.pipeline.experiment
    try:
        report = registry.report(name)
        if report is not None:
            pipeline = reconcile.PipelineView("Done", report, run_id=run.status.run_id, run_url=run.status.run_url)
        else:
            state = backend.state(run.namespace, name, experiment)
            run_id = state.run_id or run.status.run_id
            pipeline = reconcile.PipelineView(state.phase, None, state.message, run_id=run_id,
                                              run_url=backend.run_url(run_id) if run_id else None)
        created = body.metadata.get("creationTimestamp")
        observed = reconcile.TrainingRunObserved(
            now=now(), dataset=_dataset(memo, run), pipeline=pipeline,
            created=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None)
        plan = reconcile.plan(run, observed)
        if plan.submit is not None:
            arguments = reconcile.pipeline_arguments(run, plan.submit, registry.report_key(name), _lineage(memo, run))
            run_id = backend.submit(run.namespace, name, arguments, run.spec.resources.dump(), run.spec.pipeline.caching,
                                    experiment)
            plan.status.update(runId=run_id, **({"runUrl": url} if (url := backend.run_url(run_id)) else {}))
            logger.info("Started pipeline run %s", name)
    except (StoreError, PipelineBackendUnavailable) as error:
        unavailable(run, error.reason, str(error), patch)
        raise kopf.TemporaryError(str(error), delay=15) from error
    apply(plan, body, patch, memo.kube, logger)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("TrainingRun")
def reconcile_training_run(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
                           **_: Any) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=reconcile.POLL, initial_delay=reconcile.POLL)
@reconciler("TrainingRun")
def poll_training_run(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Wait for the Dataset and follow the pipeline run until it ends."""
    if not reconcile.terminal(parse(TrainingRun, body)):
        _reconcile(body, patch, memo, logger)
