"""kopf handlers for DriftMonitor: one level-based reconcile from every trigger, a timer for requeues, cleanup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from lathe_core import layout
from lathe_core.registry import ModelRegistry
from lathe_core.runs import RunState, read_report
from lathe_core.store import ObjectNotFound, StoreError

from .. import failpoints
from ..api.v1alpha1 import GROUP, VERSION, DriftMonitor
from ..reconcile import drift_monitor as reconcile
from ..reconcile import retrain as loop
from ..reconcile.canary import CANDIDATE
from ..reconcile.plan import DatasetView
from ..reconcile.schedule import seconds
from .apply import TICK, apply, exclusive, forget, now, parse, poll, reconciler, unavailable
from .views import dataset_view

PLURAL = DriftMonitor.plural
API = f"{GROUP}/{VERSION}"


def _deployment(memo: kopf.Memo, monitor: DriftMonitor) -> reconcile.DeploymentView:
    """The ModelDeployment's model and the version taking most of the traffic (the stable one, or a promoted canary)."""
    if not monitor.spec.deployment:
        return reconcile.DeploymentView()
    found = memo.kube.get(f"{GROUP}/{VERSION}", "ModelDeployment", monitor.namespace, monitor.spec.deployment)
    if found is None:
        return reconcile.DeploymentView()
    spec, status = found.get("spec") or {}, found.get("status") or {}
    traffic = sorted(status.get("traffic") or [], key=lambda t: -int(t.get("percent", 0)))
    version = int(traffic[0]["version"]) if traffic else int((spec.get("model") or {}).get("version", 0))
    state = status.get("canary") or {}
    offered = str(((found.get("metadata") or {}).get("annotations") or {}).get(CANDIDATE, ""))
    view = loop.CanaryView(state.get("version"), state.get("phase"), int(offered) if offered.isdigit() else None)
    return reconcile.DeploymentView(True, (spec.get("model") or {}).get("name"), version, view)


def _lineage(memo: kopf.Memo, namespace: str, deployment: reconcile.DeploymentView) -> loop.Lineage | None:
    """The served model's card, and the Dataset and TrainingRun it names while they exist."""
    if not deployment.model or not deployment.version:
        return None
    try:
        card = ModelRegistry(memo.store, namespace, deployment.model).card(deployment.version)
    except ObjectNotFound:
        return None
    data, run = card.get("dataset") or {}, card.get("run") or {}
    found = memo.kube.get(API, "Dataset", namespace, data["name"]) if data.get("name") else None
    trained = memo.kube.get(API, "TrainingRun", namespace, run["trainingRun"]) if run.get("trainingRun") else None
    return loop.Lineage(
        model=deployment.model,
        version=deployment.version,
        dataset=data.get("name"),
        dataset_version=data.get("version"),
        dataset_spec=(found or {}).get("spec"),
        run_spec=(trained or {}).get("spec"),
        model_spec=card.get("model") or {},
        trainer_spec=card.get("trainer"),
        target=(card.get("columns") or {}).get("target"),
    )


def _published(found: dict[str, Any] | None) -> loop.PublishedView:
    if found is None:
        return loop.PublishedView()
    meta, status = found.get("metadata") or {}, found.get("status") or {}
    last = status.get("lastRun") or {}
    settled = status.get("observedGeneration") == meta.get("generation") and last.get("outcome") not in (
        None,
        "Running",
    )
    return loop.PublishedView(
        exists=True,
        source_uri=((found.get("spec") or {}).get("source") or {}).get("uri"),
        settled=settled,
        outcome=last.get("outcome"),
        version=status.get("currentVersion"),
        message=str(last.get("message") or ""),
    )


def _training(found: dict[str, Any] | None) -> loop.TrainingView:
    if found is None:
        return loop.TrainingView()
    status = found.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    model = status.get("model") or {}
    return loop.TrainingView(
        True, status.get("phase"), ready.get("reason", ""), ready.get("message", ""), model.get("version")
    )


def _loop(memo: kopf.Memo, monitor: DriftMonitor, deployment: reconcile.DeploymentView) -> loop.LoopObserved:
    """What the retrain in flight (if any) has produced so far."""
    records = monitor.status.retrains
    current = records[-1] if records and records[-1].phase not in loop.DONE else None
    observed = loop.LoopObserved(lineage=_lineage(memo, monitor.namespace, deployment), canary=deployment.canary)
    if current is None:
        return observed
    run = f"{current.name}-data"
    report = read_report(memo.store, layout.retrain_report(monitor.namespace, monitor.name, run))
    observed.harvest = RunState("Done", report) if report is not None else memo.executor.state(monitor.namespace, run)
    observed.dataset = _published(memo.kube.get(API, "Dataset", monitor.namespace, loop.dataset_name(monitor)))
    observed.training = _training(memo.kube.get(API, "TrainingRun", monitor.namespace, current.name))
    return observed


def _observe(memo: kopf.Memo, monitor: DriftMonitor) -> reconcile.DriftObserved:
    moment = now()
    run = reconcile.watched(monitor, moment)
    report = read_report(memo.store, layout.drift_report(monitor.namespace, monitor.name, run))
    state = RunState("Done", report) if report is not None else memo.executor.state(monitor.namespace, run)
    spec = monitor.spec
    reference = dataset_view(memo, monitor.namespace, spec.reference.name) if spec.reference else None
    source = dataset_view(memo, monitor.namespace, spec.source.dataset.name) if spec.source.dataset else None
    deployment = _deployment(memo, monitor)
    retraining = spec.action == "retrain" and deployment.exists
    return reconcile.DriftObserved(
        now=moment,
        deployment=deployment,
        run=state,
        reference=reference or DatasetView(),
        source=source or DatasetView(),
        loop=_loop(memo, monitor, deployment) if retraining else loop.LoopObserved(),
    )


def _reconcile(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    with exclusive(memo, body.metadata.uid):
        _reconcile_locked(body, patch, memo, logger)


def _reconcile_locked(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger) -> None:
    monitor: DriftMonitor = parse(DriftMonitor, body)
    try:
        observed = _observe(memo, monitor)
        plan = reconcile.plan(monitor, observed)
        if plan.start is not None and memo.executor.start(plan.start):
            logger.info("Started drift check %s", plan.start.name)
            failpoints.hit("drift-monitor.check-started")
        _retrain(memo, monitor, plan.retrain, logger)
    except StoreError as error:
        raise unavailable(monitor, error, patch, memo.looks) from error
    if observed.run.phase in ("Done", "Failed"):
        accuracy = monitor.spec.accuracy.min if monitor.spec.accuracy else None
        report = observed.run.report or {"outcome": "Failed"}
        memo.drift_gauges.export(monitor.namespace, monitor.name, report, seconds(monitor.spec.interval), accuracy)
    apply(plan, body, patch, memo.looks)


def _retrain(memo: kopf.Memo, monitor: DriftMonitor, step: loop.LoopStep, logger: logging.Logger) -> None:
    """The loop's actions; each is "create if absent" or a no-op when already done."""
    if step.harvest is not None and memo.executor.start(step.harvest):
        logger.info("Started harvest run %s", step.harvest.name)
    if step.dataset is not None and memo.kube.apply(step.dataset) != "unchanged":
        logger.info("Pointed Dataset %s at the retrain data", step.dataset["metadata"]["name"])
    if step.training_run is not None and memo.kube.ensure(step.training_run):
        logger.info("Created TrainingRun %s", step.training_run["metadata"]["name"])
    if step.candidate is not None and monitor.spec.deployment:
        offered = {CANDIDATE: str(step.candidate), f"{CANDIDATE}-from": f"DriftMonitor/{monitor.name}"}
        memo.kube.annotate(API, "ModelDeployment", monitor.namespace, monitor.spec.deployment, offered)
        logger.info("Offered version %d to ModelDeployment %s as its canary", step.candidate, monitor.spec.deployment)
    if any(s is not None for s in (step.harvest, step.dataset, step.training_run, step.candidate)):
        failpoints.hit("drift-monitor.retrain-stepped")


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("DriftMonitor")
def reconcile_drift_monitor(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, initial_delay=TICK)
async def poll_drift_monitor(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, stopped: Any, **_: Any
) -> None:
    """Start each interval's check and fold its report in, when the plan asked to."""
    await poll(reconcile_drift_monitor, body, patch, memo, logger, stopped)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_drift_monitor(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    forget(memo, body.metadata.uid)
    memo.drift_gauges.forget(body.metadata.namespace, body.metadata.name)
