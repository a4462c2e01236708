"""Operator-wide kopf settings and the objects handlers share through ``memo``."""

from __future__ import annotations

import logging
import os
import threading
from functools import partial
from pathlib import Path
from typing import Any

import kopf
from prometheus_client import start_http_server

from lathe_core.stores import open_store

from ..backends.drift_metrics import DriftGauges
from ..backends.executors import JobExecutor, LocalExecutor
from ..backends.kube import KubeClient
from ..backends.pipelines_job import JobPipelines
from ..backends.pipelines_kfp import KfpPipelines
from ..backends.pipelines_local import LocalPipelines
from ..backends.processes import LocalProcesses, runs_dir
from ..backends.serving_local import LocalServing
from ..backends.store_access import store_access
from ..config import Config
from ..reconcile import jobs, pods
from ..reconcile.sources import SourcePolicy
from .apply import Looks
from .views import Dependents, StoreFacts

PREFIX = "lathe.dev"
WORKER_LIMIT = 32


class QuietTicks(logging.Filter):
    """Drops kopf's "Timer 'poll_…' succeeded." lines: the timers tick every second to honour
    requeue_after and mostly find nothing due, so those lines would bury everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Timer 'poll_") and message.endswith("succeeded."))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    # Progress and the diff base live in annotations: status stays ours and typed.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    # Our Events mark condition transitions; kopf's "handler succeeded" chatter would bury
    # them, so only its warnings and errors (failed handlers) become Events.
    settings.posting.level = logging.WARNING
    logging.getLogger("kopf.objects").addFilter(QuietTicks())
    settings.watching.server_timeout = 300
    # At most this many objects in handling at once per kind: a burst of creations (a thousand applied together)
    # queues in the watch stream instead of as a thousand handler invocations, each with its bodies and diffs, in
    # memory waiting for a worker thread.
    settings.queueing.worker_limit = WORKER_LIMIT
    settings.queueing.idle_timeout = 0.5  # a worker holds its place this long after its object's last event
    settings.networking.request_timeout = 30
    memo.config = config = Config.from_env()
    memo.kube = KubeClient.from_environment()
    memo.store = open_store(config.store)
    seldon_secret = config.serving_storage_secret if config.serving == "seldon" else ""
    # each namespace's store Secret: an administrator's (shared) or its own identity (namespace)
    memo.access = store_access(
        memo.kube,
        config.store,
        config.store_isolation,
        config.store_iam_endpoint,
        seldon_secret,
        config.store_iam_region,
    )
    memo.sources = SourcePolicy(config.store, config.source_endpoints)  # what Dataset sources may reach
    memo.processes = processes = LocalProcesses(runs_dir(config))  # logs where `lathe logs` finds them
    memo.locks, memo.locks_guard = {}, threading.Lock()  # one reconcile at a time per object (apply.exclusive)
    memo.looks = Looks()
    memo.dependents = Dependents()  # TrainingRuns waiting for a Dataset's first version
    memo.store_facts = StoreFacts()  # manifests' and model cards' contents, which never change
    memo.drift_gauges = DriftGauges()
    memo.pruned_logs = {}  # ModelDeployment uid: when its request logs were last pruned (spec.logging.retention)
    memo.local_serving = LocalServing(memo.store, Path(config.local_dir), {**os.environ, **config.store.env()})
    # Local runs are processes of the operator with its environment: only in local mode, never
    # something a TrainingRun in a cluster can ask for.
    memo.pipelines = {"local": LocalPipelines(config, processes)} if config.executor == "local" else {}
    if config.kfp_host:
        memo.pipelines["kfp"] = KfpPipelines(
            config.kfp_host,
            config.kfp_ui_url or None,
            config.kfp_token or None,
            store_secret=config.store.secret_name,
            store_env=config.store.env(keys=False),
        )  # keys: the Secret
    if config.executor == "local":
        memo.executor = LocalExecutor(memo.kube, config.store, processes)
    else:
        memo.pipelines["job"] = JobPipelines(_job_executor(memo, config.pipelines_image), jobs.training_request)
        memo.executor = _job_executor(memo, config.jobs_image)
    if memo.config.metrics_port:
        start_http_server(memo.config.metrics_port)
        logger.info("Started metrics endpoint on port %d", memo.config.metrics_port)


def _job_executor(memo: kopf.Memo, image: str) -> JobExecutor:
    """Run Jobs of one image (the jobs image; the pipelines image for the job pipeline backend)."""
    config = memo.config
    render = partial(
        jobs.manifest,
        image=image,
        service_account=config.job_service_account,
        store=config.store,
        deadline=config.job_deadline_seconds,
        denied_cidrs=config.cluster_cidrs,
    )
    return JobExecutor(
        memo.kube, render, pods.blocked, service_account=config.job_service_account, store_access=memo.access.ensure
    )


@kopf.on.probe(id="kube")
def kube_reachable(memo: kopf.Memo, **_: Any) -> bool:
    """Liveness: the operator's own client is configured (kopf adds its watch health)."""
    return memo.kube is not None
