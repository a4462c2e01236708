"""kopf handlers for DriftMonitor: one level-based reconcile from every trigger, a timer for requeues, cleanup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from lathe_core import layout
from lathe_core.runs import RunState, read_report
from lathe_core.store import StoreError

from ..api.v1alpha1 import GROUP, VERSION, DriftMonitor
from ..reconcile import drift_monitor as reconcile
from ..reconcile.plan import DatasetView
from ..reconcile.schedule import seconds
from .apply import TICK, apply, exclusive, forget, now, parse, poll, reconciler, unavailable
from .views import dataset_view

PLURAL = DriftMonitor.plural


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
    return reconcile.DeploymentView(True, (spec.get("model") or {}).get("name"), version)


def _observe(memo: kopf.Memo, monitor: DriftMonitor) -> reconcile.DriftObserved:
    moment = now()
    run = reconcile.watched(monitor, moment)
    report = read_report(memo.store, layout.drift_report(monitor.namespace, monitor.name, run))
    state = RunState("Done", report) if report is not None else memo.executor.state(monitor.namespace, run)
    spec = monitor.spec
    reference = dataset_view(memo, monitor.namespace, spec.reference.name) if spec.reference else None
    source = dataset_view(memo, monitor.namespace, spec.source.dataset.name) if spec.source.dataset else None
    return reconcile.DriftObserved(
        now=moment,
        deployment=_deployment(memo, monitor),
        run=state,
        reference=reference or DatasetView(),
        source=source or DatasetView(),
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
    except StoreError as error:
        raise unavailable(monitor, error, patch, memo.looks) from error
    if observed.run.phase in ("Done", "Failed"):
        accuracy = monitor.spec.accuracy.min if monitor.spec.accuracy else None
        report = observed.run.report or {"outcome": "Failed"}
        memo.drift_gauges.export(monitor.namespace, monitor.name, report, seconds(monitor.spec.interval), accuracy)
    apply(plan, body, patch, memo.looks)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
@kopf.on.resume(GROUP, VERSION, PLURAL)
@reconciler("DriftMonitor")
def reconcile_drift_monitor(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    _reconcile(body, patch, memo, logger)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK, initial_delay=TICK)
def poll_drift_monitor(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """Start each interval's check and fold its report in, when the plan asked to."""
    poll(memo, body.metadata.uid, lambda: reconcile_drift_monitor(body=body, patch=patch, memo=memo, logger=logger))


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_drift_monitor(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    forget(memo, body.metadata.uid)
    memo.drift_gauges.forget(body.metadata.namespace, body.metadata.name)
