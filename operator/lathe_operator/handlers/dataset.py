"""kopf handlers for Dataset: one level-based reconcile from every trigger, a timer for requeues, and cleanup."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf

from lathe_core import layout
from lathe_core.datasets import DatasetVersions
from lathe_core.registry import ModelRegistry, registered
from lathe_core.runs import RunState
from lathe_core.store import ObjectNotFound, StoreError

from .. import failpoints
from ..api.v1alpha1 import GROUP, VERSION, Dataset
from ..backends.executors import MissingInput
from ..reconcile import dataset as reconcile
from .apply import TICK, apply, exclusive, forget, now, parse, poll, reconciler, unavailable

PLURAL = Dataset.plural


def _referenced(memo: kopf.Memo, dataset: Dataset) -> set[str]:
    """Versions of this Dataset that TrainingRuns, batch ModelDeployments or DriftMonitors point at."""
    used = set()
    for run in memo.kube.list(f"{GROUP}/{VERSION}", "TrainingRun", dataset.namespace):
        spec, status = run.get("spec") or {}, run.get("status") or {}
        if (spec.get("dataset") or {}).get("name") == dataset.name:
            used |= {v for v in ((spec.get("dataset") or {}).get("version"), status.get("datasetVersion")) if v}
    for deployment in memo.kube.list(f"{GROUP}/{VERSION}", "ModelDeployment", dataset.namespace):
        ref = ((deployment.get("spec") or {}).get("batch") or {}).get("dataset") or {}
        if ref.get("name") == dataset.name and ref.get("version"):
            used.add(ref["version"])
    for monitor in memo.kube.list(f"{GROUP}/{VERSION}", "DriftMonitor", dataset.namespace):
        spec, status = monitor.get("spec") or {}, monitor.get("status") or {}
        for ref in (spec.get("reference") or {}, (spec.get("source") or {}).get("dataset") or {}):
            if ref.get("name") == dataset.name and ref.get("version"):
                used.add(ref["version"])
        if status.get("reference"):  # the version its checks compare with (its model's training data)
            used.add(status["reference"])
    return used


def _trained_on(memo: kopf.Memo, dataset: Dataset) -> set[str]:
    """Versions of this Dataset that registered models were trained on: their cards' lineage outlives the
    TrainingRuns that wrote them."""

    def lineage(card: tuple[str, int]) -> tuple[str, str] | None:
        try:
            ref = ModelRegistry(memo.store, dataset.namespace, card[0]).card(card[1]).get("dataset") or {}
        except ObjectNotFound:  # deleted since it was listed
            return None
        return (str(ref["name"]), str(ref["version"])) if ref.get("name") and ref.get("version") else None

    scope = layout.models_prefix(dataset.namespace)
    names = memo.store_facts.read(scope, registered(memo.store, dataset.namespace), lineage).values()
    return {version for name, version in filter(None, names) if name == dataset.name}


def _created(memo: kopf.Memo, versions: DatasetVersions, stored: list[str]) -> dict[str, datetime]:
    """When each stored version was published, from its manifest's createdAt."""

    def created_at(version: str) -> datetime | None:
        try:
            moment = datetime.fromisoformat(str(versions.manifest(version)["createdAt"]))
        except (ObjectNotFound, KeyError, ValueError):  # deleted since it was listed, or undated: kept
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    found = memo.store_facts.read(versions.prefix, stored, created_at)
    return {version: moment for version, moment in found.items() if moment is not None}


def _secret_labels(memo: kopf.Memo, dataset: Dataset) -> dict[str, str] | None:
    """The credentials Secret's labels, from its metadata alone: its data never reaches the operator here."""
    ref = dataset.spec.source.credentials_secret
    if ref is None:
        return None
    found = memo.kube.metadata("v1", "Secret", dataset.namespace, ref.name)
    return None if found is None else dict(found.get("labels") or {})


def _observe(memo: kopf.Memo, dataset: Dataset, versions: DatasetVersions) -> reconcile.DatasetObserved:
    moment = now()
    run, _ = reconcile.current_run(dataset, moment)
    report = versions.report(run)
    if report is None:
        state = memo.executor.state(dataset.namespace, run)
        labels = _secret_labels(memo, dataset) if state.phase == "Absent" else None  # checked before a start
        return reconcile.DatasetObserved(now=moment, run=state, secret_labels=labels)
    stored = versions.versions()
    if len(stored) <= dataset.spec.retention.keep:  # nothing to delete: no manifests or cards to read
        return reconcile.DatasetObserved(now=moment, run=RunState("Done", report), stored_versions=stored)
    return reconcile.DatasetObserved(
        now=moment,
        run=RunState("Done", report),
        stored_versions=stored,
        created=_created(memo, versions, stored),
        referenced=_referenced(memo, dataset) | _trained_on(memo, dataset),
    )


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    with exclusive(memo, body.metadata.uid):
        _reconcile_locked(body, patch, memo, logger)


def _reconcile_locked(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    dataset: Dataset = parse(Dataset, body)
    versions = DatasetVersions(memo.store, dataset.namespace, dataset.name)
    try:
        plan = reconcile.plan(dataset, _observe(memo, dataset, versions), memo.sources)
        if plan.start is not None:
            try:
                if memo.executor.start(plan.start):
                    logger.info("Started ingest run %s", plan.start.name)
                    failpoints.hit("dataset.ingest-started")
            except MissingInput as error:  # recorded as the run's outcome; retried with back-off
                versions.put_report(
                    plan.start.name,
                    {
                        "run": plan.start.name,
                        "outcome": "Failed",
                        "reason": error.reason,
                        "message": str(error),
                        "transient": True,
                        "finishedAt": now(),
                    },
                )
                memo.looks.after(dataset.uid, 1)
                raise kopf.TemporaryError(str(error), delay=1) from error
        for version in plan.delete_versions:
            versions.delete(version)
            logger.info("Deleted dataset version %s", version)
        if plan.delete_versions:
            failpoints.hit("dataset.versions-deleted")
    except StoreError as error:
        raise unavailable(dataset, error, patch, memo.looks) from error
    apply(plan, body, patch, memo.looks)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("Dataset")
def reconcile_dataset(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, initial_delay=TICK)
async def poll_dataset(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, stopped: Any, **_: Any
) -> None:
    """Follow running ingests, retry transient failures and start scheduled refreshes, when the plan asked to."""
    await poll(reconcile_dataset, body, patch, memo, logger, stopped)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_dataset(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    forget(memo, body.metadata.uid)
    memo.store_facts.forget(layout.dataset_prefix(body.metadata.namespace, body.metadata.name))


@kopf.on.delete(
    GROUP, VERSION, PLURAL, when=lambda spec, **_: bool((spec.get("retention") or {}).get("deleteOnRemoval"))
)
def delete_dataset_versions(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """With retention.deleteOnRemoval, remove the stored versions before the finalizer is released."""
    dataset: Dataset = parse(Dataset, body)
    try:
        DatasetVersions(memo.store, dataset.namespace, dataset.name).delete_all()
    except StoreError as error:
        raise kopf.TemporaryError(f"Object store: {error}", delay=15) from error
    logger.info("Deleted the stored versions of Dataset %s", dataset.name)
