"""kopf handlers for ModelDeployment: one level-based reconcile from every trigger, a timer for requeues, cleanup."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta
from typing import Any

import kopf

from lathe_core import layout, log_retention
from lathe_core.registry import ModelRegistry
from lathe_core.runs import RunState, read_progress, read_report
from lathe_core.store import StoreError

from .. import failpoints
from ..api.v1alpha1 import GROUP, VERSION, ModelDeployment
from ..backends.prometheus import MetricsUnavailable, PrometheusMetrics
from ..reconcile import canary, offline, seldon, serving_kubernetes
from ..reconcile import model_deployment as reconcile
from ..reconcile.schedule import seconds
from .apply import TICK, apply, exclusive, forget, now, parse, poll, reconciler, unavailable
from .views import dataset_view

PLURAL = ModelDeployment.plural


def _metrics(
    memo: kopf.Memo, md: ModelDeployment, logger: logging.Logger
) -> tuple[dict[int, canary.VersionMetrics], str]:
    """Both versions' figures over the window, or why there are none (the canary then waits)."""
    assert md.spec.canary is not None
    if not memo.config.prometheus_url:
        return {}, "no Prometheus is configured (LATHE_PROMETHEUS_URL, chart serving.prometheusUrl)"
    source = PrometheusMetrics(memo.config.prometheus_url, memo.config.canary_metrics)
    try:
        return {
            version: canary.VersionMetrics(
                **source.version(md.namespace, md.name, version, md.spec.canary.analysis.window)
            )
            for version in (canary.stable_version(md), md.spec.canary.version)  # stable: a promoted one too
        }, ""
    except MetricsUnavailable as error:
        logger.warning("Postponed the canary analysis: %s", error)
        return {}, str(error)


def _workers(md: ModelDeployment) -> int:
    """Local mode stands replicas in for server processes on one port, at most one per core."""
    wanted = md.spec.replicas or (md.spec.autoscaling.max_replicas if md.spec.autoscaling else 1)
    return max(1, min(wanted, len(os.sched_getaffinity(0))))


def _recorded(memo: kopf.Memo, md: ModelDeployment) -> dict[int, str]:
    """model.onnx's sha256 by version, as the namespace's TrainingRuns recorded when they registered it: the
    servers and runs refuse other bytes (the store's card could be rewritten with the model; this lives in the
    API server). A version registered otherwise is checked against its card alone."""
    found: dict[int, str] = {}
    for run in memo.kube.list(f"{GROUP}/{VERSION}", "TrainingRun", md.namespace):
        model = (run.get("status") or {}).get("model") or {}
        if model.get("name") == md.spec.model.name and model.get("version") and model.get("sha256"):
            found[int(model["version"])] = str(model["sha256"])
    return found


def _serve(
    memo: kopf.Memo, md: ModelDeployment, serve: reconcile.Serve, recorded: dict[int, str]
) -> reconcile.ServingView:
    versions = sorted({v for v, _ in serve.traffic} | ({serve.shadow} if serve.shadow else set()))
    if memo.config.serving != "seldon" and md.spec.graph and md.spec.graph.transformers:
        return reconcile.ServingView(
            "Failed",
            f"spec.graph transformers are Seldon inference graph nodes: serving backend {memo.config.serving} "
            "does not run them; nothing was started",
        )
    if memo.config.serving == "local":
        state, message, endpoint = memo.local_serving.apply(
            md.namespace,
            md.name,
            md.spec.model.name,
            versions,
            serve.traffic,
            serve.shadow,
            md.spec.logging.sample_rate if md.spec.logging else 0.0,
            _workers(md),
            recorded,
        )
        restarts = memo.local_serving.restarts(md.namespace, md.name)
    elif memo.config.serving == "kubernetes":
        memo.access.ensure(md.namespace)  # the store Secret the model server pods read
        image, store = memo.config.serving_image, memo.config.store
        for manifest in serving_kubernetes.manifests(
            md, serve.traffic, serve.shadow, image=image, store=store, secret=store.secret_name, checksums=recorded
        ):
            memo.kube.apply(manifest)
        found = memo.kube.get("apps/v1", "Deployment", md.namespace, md.name)
        pods = memo.kube.list("v1", "Pod", md.namespace, labels=f"lathe.dev/model-deployment={md.name}")
        state, message, endpoint = serving_kubernetes.observe(found, md, pods)
        restarts = serving_kubernetes.restarts(pods)
    else:
        memo.access.ensure(md.namespace)  # the storage Secret Seldon's initializer reads
        uris = {v: memo.store.uri(layout.model_file(md.namespace, md.spec.model.name, v)) for v in versions}
        manifest = seldon.seldon_deployment(
            md,
            serve.traffic,
            serve.shadow,
            uris,
            image=memo.config.serving_image,
            store=memo.config.store,
            storage_secret=memo.config.serving_storage_secret,
            logger_url=memo.config.request_logger_url or None,
            checksums=recorded,
        )
        memo.kube.apply(manifest)
        found = memo.kube.get(seldon.API_VERSION, seldon.KIND, md.namespace, md.name)
        state, message, endpoint = seldon.observe(found)
        restarts = ""  # Seldon's status does not say; its pods' restart counts are kubectl's to show
    return reconcile.ServingView(state, message, endpoint, restarts)  # type: ignore[arg-type]


PRUNE_EVERY = 3600.0  # seconds between two prunings of one deployment's logs (a restart prunes again: harmless)


def _prune_logs(memo: kopf.Memo, md: ModelDeployment, moment: datetime, logger: logging.Logger) -> None:
    """``spec.logging.retention``: delete the deployment's logged requests and feedback older than it, hourly.
    A store that refuses is logged and tried again next hour: serving never waits on it."""
    retention = md.spec.logging.retention if md.spec.logging else None
    pruned: dict[str, float] = memo.pruned_logs
    if retention is None or time.monotonic() - pruned.get(md.uid, -PRUNE_EVERY) < PRUNE_EVERY:
        return
    pruned[md.uid] = time.monotonic()
    try:
        deleted = log_retention.prune(memo.store, md.namespace, md.name, timedelta(seconds=seconds(retention)), moment)
    except StoreError as error:
        logger.warning("Kept request logs past their retention: the store refused: %s", error)
        return
    if deleted:
        logger.info("Deleted %d request log objects older than %s", deleted, retention)


def _run(memo: kopf.Memo, md: ModelDeployment) -> RunState:
    """This generation's batch or edge run: its report once written, else the executor's view and progress."""
    run = offline.run_name(md)
    report = read_report(memo.store, layout.deployment_report(md.namespace, md.name, run))
    if report is not None:
        return RunState("Done", report)
    state = memo.executor.state(md.namespace, run)
    progress = read_progress(memo.store, layout.deployment_progress(md.namespace, md.name, run))
    return RunState(state.phase, message=state.message, progress=progress)


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    """One reconcile at a time per object: kopf runs the timer beside change handlers, in threads."""
    if body.metadata.get("deletionTimestamp"):
        return  # being deleted: start nothing (local servers are stopped by the deletion handler)
    with exclusive(memo, body.metadata.uid):
        _reconcile_locked(body, patch, memo, logger)


def _reconcile_locked(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    md: ModelDeployment = canary.effective(parse(ModelDeployment, body))  # an annotated candidate included
    registry = ModelRegistry(memo.store, md.namespace, md.spec.model.name)
    try:
        known = set(registry.versions())
        observed = reconcile.DeploymentObserved(
            now=now(), missing=[v for v in reconcile.versions(md) if v not in known]
        )
        if not observed.missing:
            observed.checksums = _recorded(memo, md)
        if not observed.missing and md.spec.mode == "online":
            observed.promoted = registry.promoted()
            if canary.analysis_due(md, observed.now):
                observed.metrics, observed.metrics_error = _metrics(memo, md, logger)
            serve = reconcile.desired(md, observed)
            observed.serving = _serve(memo, md, serve, observed.checksums)
            failpoints.hit("model-deployment.served")
            _prune_logs(memo, md, observed.now, logger)
        elif not observed.missing:
            observed.run = _run(memo, md)
            if md.spec.batch is not None:
                observed.dataset = dataset_view(memo, md.namespace, md.spec.batch.dataset.name)
        plan = reconcile.plan(md, observed)
        if plan.promote is not None:  # the next gate's baseline and the version rollbacks return to
            registry.promote(plan.promote, f"serving as stable in ModelDeployment {md.namespace}/{md.name}")
            logger.info("Promoted %s version %d in the registry", md.spec.model.name, plan.promote)
            failpoints.hit("model-deployment.promoted")
        if plan.start is not None and memo.executor.start(plan.start):
            logger.info("Started %s run %s", md.spec.mode, plan.start.name)
            failpoints.hit("model-deployment.run-started")
    except StoreError as error:
        raise unavailable(md, error, patch, memo.looks) from error
    apply(plan, body, patch, memo.looks)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.update(GROUP, VERSION, PLURAL, field="metadata.annotations")  # lathe.dev/canary-version
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("ModelDeployment")
def reconcile_model_deployment(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, initial_delay=TICK)
async def poll_model_deployment(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, stopped: Any, **_: Any
) -> None:
    """Supervise online serving, move canaries, follow batch and edge runs until they end, when the plan asked to."""
    await poll(reconcile_model_deployment, body, patch, memo, logger, stopped)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_model_deployment(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    forget(memo, body.metadata.uid)


def _local(memo: kopf.Memo, **_: Any) -> bool:
    return bool(memo.config.serving == "local")


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_local)
def stop_local_server(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Local mode: stop the model server process (in a cluster the SeldonDeployment goes with its owner)."""
    with exclusive(memo, body.metadata.uid):
        memo.local_serving.remove(body.metadata.namespace, body.metadata.name)
    forget(memo, body.metadata.uid)
    logger.info("Stopped the local model server of %s", body.metadata.name)
