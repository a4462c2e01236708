"""The closed loop of a DriftMonitor with ``action: retrain``: one retrain per drift episode.

An episode opens with the check that finds drift (or live accuracy under the floor) and
closes with a check that finds neither once no retrain is in flight, or with a promotion.
Its retrain, at most one and only after ``cooldown`` since the last one began, goes
through phases kept in ``status.retrains``:

    Harvesting  ``lathe harvest`` writes the labelled logged traffic, merged with the served
                model's training data, to the store
    Publishing  the monitor's ``<monitor>-retrain`` Dataset reads that file: a validated version
    Training    a TrainingRun from the served model's run and the template, on that version
    Canary      the new model version offered to the ModelDeployment as the
                ``lathe.dev/canary-version`` annotation (spec stays the GitOps tool's)
    Promoted | RolledBack | Failed

Every name derives from the record (``<monitor>-retrain-<n>``) and every action is
"create if absent", so a restarted operator finds what it started and starts nothing twice.
A retrain that fails (data refused, gates failed, canary rolled back) is not retried in
the same episode.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lathe_core.runs import RunRequest, RunState

from ..api.v1alpha1 import API_VERSION, DriftMonitor
from ..api.v1alpha1.drift_monitor import Episode, RetrainRecord
from . import names
from .plan import MANAGED_BY, Event, owner_reference
from .schedule import seconds

POLL = 5.0
HISTORY = 20
DONE = ("Promoted", "RolledBack", "Failed")
MONITOR_LABEL = "lathe.dev/drift-monitor"


@dataclass(frozen=True)
class Lineage:
    """Where the served model came from: its card's Dataset version and the objects that made it."""

    model: str
    version: int
    dataset: str | None = None
    dataset_version: str | None = None
    dataset_spec: dict[str, Any] | None = None  # the training Dataset's spec, while the object exists
    run_spec: dict[str, Any] | None = None  # the TrainingRun's spec, while the object exists
    model_spec: dict[str, Any] = field(default_factory=dict)  # the card's copy of spec.model
    trainer_spec: dict[str, Any] | None = None  # and of spec.trainer, when the team's code trained it
    target: str | None = None  # the label column the model learned


@dataclass(frozen=True)
class PublishedView:
    """The monitor's retrain Dataset: which file it last read and how that ended."""

    exists: bool = False
    source_uri: str | None = None
    settled: bool = False  # the ingest of its current spec has ended
    outcome: str | None = None  # Published, Unchanged or Failed
    version: str | None = None
    message: str = ""


@dataclass(frozen=True)
class TrainingView:
    exists: bool = False
    phase: str | None = None
    reason: str = ""
    message: str = ""
    model_version: int | None = None


@dataclass(frozen=True)
class CanaryView:
    """What the ModelDeployment says about a candidate: its canary status and the annotation."""

    version: int | None = None
    phase: str | None = None
    offered: int | None = None


@dataclass
class LoopObserved:
    lineage: Lineage | None = None
    harvest: RunState = RunState("Absent")
    dataset: PublishedView = PublishedView()
    training: TrainingView = TrainingView()
    canary: CanaryView = CanaryView()


@dataclass
class LoopStep:
    """What the loop wants this reconcile: status fields, Events, and actions for the handlers."""

    status: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    harvest: RunRequest | None = None
    dataset: dict[str, Any] | None = None  # Dataset manifest to apply
    training_run: dict[str, Any] | None = None  # TrainingRun manifest to create if absent
    candidate: int | None = None  # model version to offer the ModelDeployment
    requeue_after: float | None = None
    note: str = ""  # for the Ready condition's message


def dataset_name(monitor: DriftMonitor) -> str:
    return names.child(monitor.name, 52, "retrain")


def _number(record: RetrainRecord) -> int:
    tail = record.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _labels(monitor: DriftMonitor, component: str) -> dict[str, str]:
    return {**MANAGED_BY, MONITOR_LABEL: monitor.name, "app.kubernetes.io/component": component}


def advance(
    monitor: DriftMonitor, observed: LoopObserved, finding: str | None, check: str, labelled: int, now: datetime
) -> LoopStep:
    """The episode after the check just folded (``finding``: what it found, "" nothing, None no new
    check), then the episode's retrain moved on as far as the observations allow."""
    step, episode, records = LoopStep(), monitor.status.episode, list(monitor.status.retrains)
    current = records[-1] if records and episode and records[-1].episode == episode.check else None
    if finding and episode is None and all(r.episode != check for r in records):  # not a closed one's check
        model = observed.lineage.version if observed.lineage else None
        episode = Episode(check=check, since=now, reason=finding[:1024], model_version=model)
    elif finding == "" and episode is not None and (current is None or current.phase in DONE):
        episode, current = None, None
    if episode is not None and current is None:
        current = _begin(monitor, observed, records, episode, labelled, now, step)
        if current is not None:
            records.append(current)
            step.events.append(_event(current))
    if current is not None and current.phase not in DONE:
        before = current.phase
        current = _progress(monitor, observed, current, now, step)
        records[-1] = current
        if current.phase != before:
            step.events.append(_event(current))
    if current is not None and current.phase == "Promoted":
        episode = None  # the loop is closed: drift from here on is a new episode
    if current is not None:
        step.note = f"{current.name}: {current.phase.lower()}" + (f" ({current.message})" if current.message else "")
    step.status = {"episode": episode, "retrains": records[-HISTORY:]}
    return step


def _begin(
    monitor: DriftMonitor,
    observed: LoopObserved,
    records: list[RetrainRecord],
    episode: Episode,
    labelled: int,
    now: datetime,
    step: LoopStep,
) -> RetrainRecord | None:
    """A new retrain for the episode, unless the cooldown, too few labels or a missing lineage hold it back."""
    assert monitor.spec.retrain is not None
    retrain = monitor.spec.retrain
    if records:
        allowed = records[-1].time + timedelta(seconds=seconds(retrain.cooldown))
        if now < allowed:
            step.note = f"held by the cooldown until {allowed.isoformat(timespec='seconds')}"
            step.requeue_after = (allowed - now).total_seconds() + 1
            return None
    if labelled < retrain.data.min_labelled:
        step.note = f"waits for {retrain.data.min_labelled} labelled requests in a check (now {labelled})"
        return None
    if observed.lineage is None or not observed.lineage.dataset_version:
        step.note = "waits: the served model's card names no training Dataset version"
        return None
    number = (_number(records[-1]) if records else 0) + 1
    name = names.child(monitor.name, 40, "retrain", number)
    return RetrainRecord(name=name, episode=episode.check, time=now, reason=episode.reason, phase="Harvesting")


def _progress(
    monitor: DriftMonitor, observed: LoopObserved, record: RetrainRecord, now: datetime, step: LoopStep
) -> RetrainRecord:
    """Each phase that the observations show finished hands over to the next one in the same reconcile."""
    step.requeue_after = POLL
    if record.phase == "Harvesting":
        record = _harvesting(monitor, observed, record, step)
    if record.phase == "Publishing":
        record = _publishing(monitor, observed, record, step)
    if record.phase == "Training":
        record = _training(monitor, observed, record, step)
    if record.phase == "Canary":
        record = _canary(observed, record, step)
    if record.phase in DONE:
        record = record.model_copy(update={"finished": now})
    return record


def _fail(record: RetrainRecord, message: str) -> RetrainRecord:
    return record.model_copy(update={"phase": "Failed", "message": message[:1024]})


def _harvesting(monitor: DriftMonitor, observed: LoopObserved, record: RetrainRecord, step: LoopStep) -> RetrainRecord:
    run = observed.harvest
    if run.phase == "Absent":
        step.harvest = harvest_request(monitor, observed, record)
        return record
    if run.phase == "Running":
        return record
    report = run.report or {}
    if run.phase == "Failed" or report.get("outcome") != "Succeeded":
        reason = report.get("reason") or "HarvestFailed"
        return _fail(record, f"{reason}: {report.get('message') or run.message}")
    return record.model_copy(
        update={"phase": "Publishing", "data_uri": report["uri"], "message": str(report.get("message", ""))}
    )


def harvest_request(monitor: DriftMonitor, observed: LoopObserved, record: RetrainRecord) -> RunRequest:
    """``lathe harvest`` over the data window that ends when the retrain began."""
    assert monitor.spec.retrain is not None and observed.lineage is not None
    data, lineage = monitor.spec.retrain.data, observed.lineage
    span = seconds(data.window or monitor.spec.window.duration)
    body = {
        "deployment": monitor.spec.deployment,
        "model": {"name": lineage.model, "version": lineage.version},
        "window": {"start": (record.time - timedelta(seconds=span)).isoformat(), "end": record.time.isoformat()},
        "merge": data.merge,
        "minLabelled": data.min_labelled,
        "maxLabelled": data.max_labelled,
        "maxSourceShare": data.max_source_share,
    }
    name = f"{record.name}-data"
    return RunRequest(
        namespace=monitor.namespace,
        name=name,
        component="harvest",
        args=("harvest", "--namespace", monitor.namespace, "--monitor", monitor.name, "--run", name),
        labels=_labels(monitor, "harvest"),
        env={"LATHE_HARVEST_REQUEST": json.dumps(body, sort_keys=True)},
        owner=owner_reference(monitor),
        generation=monitor.generation,
    )


def _publishing(monitor: DriftMonitor, observed: LoopObserved, record: RetrainRecord, step: LoopStep) -> RetrainRecord:
    assert record.data_uri is not None
    step.dataset = dataset_manifest(monitor, observed.lineage, record.data_uri)
    seen = observed.dataset
    if not (seen.exists and seen.source_uri == record.data_uri and seen.settled):
        return record.model_copy(update={"dataset": dataset_name(monitor)})
    if seen.outcome == "Failed" or not seen.version:
        return _fail(record, f"Dataset {dataset_name(monitor)} refused the retrain data: {seen.message}")
    update = {"phase": "Training", "dataset": dataset_name(monitor), "dataset_version": seen.version}
    return record.model_copy(update={**update, "message": f"trains on {dataset_name(monitor)} {seen.version[:19]}"})


def dataset_manifest(monitor: DriftMonitor, lineage: Lineage | None, uri: str) -> dict[str, Any]:
    """The training Dataset's rules over the retrain's file; no refresh, Lathe's own store."""
    spec = copy.deepcopy((lineage.dataset_spec if lineage else None) or {})
    spec.pop("refresh", None)
    spec["source"] = {"uri": uri, "format": "parquet"}
    if lineage is not None and lineage.target:
        spec.setdefault("target", lineage.target)
    return {
        "apiVersion": API_VERSION,
        "kind": "Dataset",
        "metadata": {
            "name": dataset_name(monitor),
            "namespace": monitor.namespace,
            "labels": _labels(monitor, "retrain-data"),
            "ownerReferences": [owner_reference(monitor)],
        },
        "spec": spec,
    }


def _training(monitor: DriftMonitor, observed: LoopObserved, record: RetrainRecord, step: LoopStep) -> RetrainRecord:
    run = observed.training
    if not run.exists:
        step.training_run = training_run_manifest(monitor, observed.lineage, record)
        return record.model_copy(update={"training_run": record.name})
    if run.model_version is not None:
        update = {"phase": "Canary", "model_version": run.model_version, "training_run": record.name}
        return record.model_copy(update={**update, "message": f"version {run.model_version} is the canary"})
    if run.phase == "Failed":
        return _fail(record, f"TrainingRun {record.name}: {run.reason}: {run.message}")
    return record


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``, mappings key by key (as a JSON merge patch, without deletes)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def training_run_manifest(monitor: DriftMonitor, lineage: Lineage | None, record: RetrainRecord) -> dict[str, Any]:
    """The served model's run spec, the template over it, on the published version, registered under the
    served model's name (the deployment can only serve versions of that model)."""
    assert monitor.spec.retrain is not None and lineage is not None and record.dataset
    kept = {"model": lineage.model_spec, **({"trainer": lineage.trainer_spec} if lineage.trainer_spec else {})}
    base = lineage.run_spec or kept
    spec = _merged(base, monitor.spec.retrain.training_run_template)
    spec["dataset"] = {"name": record.dataset, "version": record.dataset_version}
    spec["model"] = {**(spec.get("model") or {}), "name": lineage.model}
    spec.pop("baselineVersion", None)  # gates compare with the promoted version: the one serving
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainingRun",
        "metadata": {
            "name": record.name,
            "namespace": monitor.namespace,
            "labels": _labels(monitor, "retrain"),
            "annotations": {"lathe.dev/episode": record.episode},
            "ownerReferences": [owner_reference(monitor)],
        },
        "spec": spec,
    }


def _canary(observed: LoopObserved, record: RetrainRecord, step: LoopStep) -> RetrainRecord:
    assert record.model_version is not None
    seen = observed.canary
    if seen.offered is None or seen.offered < record.model_version:
        step.candidate = record.model_version
    if seen.version != record.model_version:
        return record
    if seen.phase == "Promoted":
        step.requeue_after = None
        return record.model_copy(update={"phase": "Promoted", "message": f"version {seen.version} serves all traffic"})
    if seen.phase == "RolledBack":
        return record.model_copy(
            update={"phase": "RolledBack", "message": f"version {seen.version} was rolled back by its canary analysis"}
        )
    return record


def _event(record: RetrainRecord) -> Event:
    texts = {
        "Harvesting": ("RetrainStarted", f"Retrain {record.name} started: {record.reason}"),
        "Publishing": ("RetrainDataWritten", f"Retrain {record.name}: {record.message}"),
        "Training": ("RetrainDataPublished", f"Retrain {record.name}: Dataset version {record.dataset_version}"),
        "Canary": ("RetrainRegistered", f"Retrain {record.name}: version {record.model_version} is the canary"),
        "Promoted": ("RetrainPromoted", f"Retrain {record.name}: version {record.model_version} promoted"),
        "RolledBack": ("RetrainRolledBack", f"Retrain {record.name}: {record.message}"),
        "Failed": ("RetrainFailed", f"Retrain {record.name} failed: {record.message}"),
    }
    reason, message = texts.get(record.phase, ("Retrain", record.name))
    return Event("Warning" if record.phase in ("Failed", "RolledBack") else "Normal", reason, message)
