"""kopf handlers for Dataset: one level-based reconcile reached from every trigger."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..api.v1alpha1 import GROUP, VERSION, Dataset
from ..reconcile import dataset as reconcile
from .apply import apply, observe_children, parse, reconciler

PLURAL = Dataset.plural


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.timer(GROUP, VERSION, PLURAL, interval=reconcile.JOB_POLL_SECONDS, initial_delay=reconcile.JOB_POLL_SECONDS)
@reconciler("Dataset")
def reconcile_dataset(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    dataset: Dataset = parse(Dataset, body)
    observed = observe_children(memo.kube, dataset.namespace, [("batch/v1", "Job", reconcile.job_name(dataset))])
    plan = reconcile.plan(
        dataset, observed, image=memo.config.pipelines_image, service_account=memo.config.job_service_account
    )
    apply(plan, body, patch, memo.kube, logger)
