"""kopf handlers for ModelDeployment: one level-based reconcile from every trigger, a poll, and local cleanup."""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

import kopf

from lathe_pipelines import deployments as jobs
from lathe_pipelines.datasets import load
from lathe_pipelines.models import ModelRegistry

from ..api.v1alpha1 import GROUP, VERSION, ModelDeployment
from ..backends.executors import job_state, store_env
from ..backends.ports import StoreError
from ..backends.prometheus import MetricsUnavailable, PrometheusMetrics
from ..reconcile import canary, offline, seldon
from ..reconcile import model_deployment as reconcile
from ..reconcile.offline_job import offline_job
from .apply import apply, now, parse, reconciler, unavailable

PLURAL = ModelDeployment.plural
POLL = 5.0


def _metrics(memo: kopf.Memo, md: ModelDeployment, logger: logging.Logger,
             observed: reconcile.DeploymentObserved) -> None:
    """Both versions' figures over the window, or why there are none (the canary then waits)."""
    assert md.spec.canary is not None
    if not memo.config.prometheus_url:
        observed.metrics_error = "no Prometheus is configured (LATHE_PROMETHEUS_URL, chart serving.prometheusUrl)"
        return
    source = PrometheusMetrics(memo.config.prometheus_url, memo.config.canary_metrics)
    try:
        for version in (md.spec.model.version, md.spec.canary.version):
            observed.metrics[version] = canary.VersionMetrics(**source.version(
                md.namespace, md.name, version, md.spec.canary.analysis.window))
    except MetricsUnavailable as error:
        logger.warning("Postponed the canary analysis: %s", error)
        observed.metrics, observed.metrics_error = {}, str(error)


def _workers(md: ModelDeployment) -> int:
    """Local mode stands replicas in for server processes on one port, at most one per core."""
    wanted = md.spec.replicas or (md.spec.autoscaling.max_replicas if md.spec.autoscaling else 1)
    return max(1, min(wanted, len(os.sched_getaffinity(0))))


def _serve(memo: kopf.Memo, md: ModelDeployment, serve: reconcile.Serve,
           registry: ModelRegistry) -> reconcile.ServingView:
    versions = sorted({v for v, _ in serve.traffic} | ({serve.shadow} if serve.shadow else set()))
    if memo.config.serving == "local":
        if md.spec.graph and md.spec.graph.transformers:
            return reconcile.ServingView("Failed", "spec.graph transformers are containers: they run in a cluster "
                                                   "(Seldon), not in local mode; nothing was started")
        state, message, endpoint = memo.local_serving.apply(
            md.namespace, md.name, {v: registry.key(v, "") for v in versions}, serve.traffic, serve.shadow,
            md.spec.logging.sample_rate if md.spec.logging else 0.0, _workers(md))
    else:
        uris = {v: memo.store.uri(registry.key(v, "")) for v in versions}
        manifest = seldon.seldon_deployment(md, serve.traffic, serve.shadow, uris, image=memo.config.serving_image,
                                            store=memo.config.store,
                                            storage_secret=memo.config.serving_storage_secret,
                                            logger_url=memo.config.request_logger_url or None)
        memo.kube.apply(manifest)
        found = memo.kube.get(seldon.API_VERSION, seldon.KIND, md.namespace, md.name)
        state, message, endpoint = seldon.observe(found)
    return reconcile.ServingView(state, message, endpoint)  # type: ignore[arg-type]


def _job(memo: kopf.Memo, md: ModelDeployment) -> tuple[offline.JobView, offline.DatasetView]:
    run = offline.run_name(md)
    dataset = offline.DatasetView()
    if md.spec.batch is not None:
        found = memo.kube.get(f"{GROUP}/{VERSION}", "Dataset", md.namespace, md.spec.batch.dataset.name)
        if found is not None:
            dataset = offline.DatasetView(True, (found.get("status") or {}).get("currentVersion"))
    report = load(memo.store, jobs.report_key(md.namespace, md.name, run))
    if report is not None:
        return offline.JobView("Done", report), dataset
    state = (memo.processes.state(f"{md.namespace}/{run}") if memo.config.executor == "local"
             else job_state(memo.kube, md.namespace, run))
    progress = load(memo.store, jobs.report_key(md.namespace, md.name, run, "progress.json")) or {}
    return offline.JobView(state.phase, None, state.message, progress.get("rows")), dataset


def _start(memo: kopf.Memo, md: ModelDeployment, start: offline.Start) -> None:
    args = ["score" if start.mode == "batch" else "bundle", "--namespace", md.namespace, "--deployment", md.name,
            "--run", start.run, "--model", md.spec.model.name, "--model-version", str(md.spec.model.version)]
    if md.spec.batch is not None:
        args += ["--dataset", md.spec.batch.dataset.name, "--dataset-version", str(start.dataset_version),
                 "--chunk-rows", str(md.spec.batch.chunk_rows)]
    if md.spec.edge is not None and md.spec.edge.quantize:
        args.append("--quantize")
    if memo.config.executor == "local":
        memo.processes.start(f"{md.namespace}/{start.run}", [sys.executable, "-m", "lathe_operator", *args],
                             {**os.environ, **store_env(memo.config)})
    else:
        memo.kube.ensure(offline_job(md, start.run, args, image=memo.config.pipelines_image,
                                     service_account=memo.config.job_service_account, store=memo.config.store))


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    """One reconcile at a time per object: kopf runs the timer beside change handlers, in threads."""
    if body.metadata.get("deletionTimestamp"):
        return  # being deleted: start nothing (local servers are stopped by the deletion handler)
    with _lock(memo, body.metadata.uid):
        _reconcile_locked(body, patch, memo, logger)


def _lock(memo: kopf.Memo, uid: str) -> threading.Lock:
    with memo.locks_guard:
        return memo.locks.setdefault(uid, threading.Lock())


def _reconcile_locked(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    md: ModelDeployment = parse(ModelDeployment, body)
    registry = ModelRegistry(memo.store, md.namespace, md.spec.model.name)
    try:
        known = set(registry.versions())
        observed = reconcile.DeploymentObserved(now=now(), missing=[v for v in reconcile.versions(md) if v not in known])
        if not observed.missing and md.spec.mode == "online":
            if canary.analysis_due(md, observed.now):
                _metrics(memo, md, logger, observed)
            serve = reconcile.desired(md, observed)
            observed.serving = _serve(memo, md, serve, registry)
        elif not observed.missing:
            observed.job, observed.dataset = _job(memo, md)
        plan = reconcile.plan(md, observed)
        if plan.start is not None:
            _start(memo, md, plan.start)
            logger.info("Started %s run %s", plan.start.mode, plan.start.run)
    except StoreError as error:
        unavailable(md, error.reason, str(error), patch)
        raise kopf.TemporaryError(str(error), delay=15) from error
    apply(plan, body, patch, memo.kube, logger)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("ModelDeployment")
def reconcile_model_deployment(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
                               **_: Any) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=POLL, initial_delay=POLL)
@reconciler("ModelDeployment")
def poll_model_deployment(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger,
                          **_: Any) -> None:
    """Supervise online serving, move canaries, follow batch and edge runs until they end."""
    if not offline.terminal(parse(ModelDeployment, body)):
        _reconcile(body, patch, memo, logger)


def _local(memo: kopf.Memo, **_: Any) -> bool:
    return bool(memo.config.serving == "local")


@kopf.on.delete(GROUP, VERSION, PLURAL, when=_local)
def stop_local_server(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Local mode: stop the model server process (in a cluster the SeldonDeployment goes with its owner)."""
    with _lock(memo, body.metadata.uid):
        memo.local_serving.remove(body.metadata.namespace, body.metadata.name)
    with memo.locks_guard:
        memo.locks.pop(body.metadata.uid, None)
    logger.info("Stopped the local model server of %s", body.metadata.name)
