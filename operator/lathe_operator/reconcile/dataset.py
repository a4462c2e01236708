"""Dataset reconciler: start the ingest run the spec and schedule call for, and fold its report into status.

Run names are deterministic: ``<dataset>-<spec hash>-<refresh slot>-<attempt>``. A restarted
operator computes the same name, finds the run (or its report) and starts nothing twice;
content addressing makes even a repeated run publish one version. A run whose source
``sources.check`` refuses is not started: its refusal is the run's outcome.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lathe_core.runs import RunRequest, RunState

from ..api.v1alpha1 import MESSAGE_MAX, Dataset
from ..api.v1alpha1.dataset import IngestRun, ValidationSummary, VersionRecord
from . import conditions as cond
from . import names, schedule, sources
from .plan import MANAGED_BY, Event, Observed, Plan, owner_reference, transition_events

REASON_MAX, FAILURES, FAILURE_MAX = 128, 20, 1024  # IngestRun.reason, ValidationSummary.failures and its items

RUNNING_POLL = 5.0
RETRY_BASE, RETRY_MAX = 10.0, 600.0
HISTORY = 20
SOURCE_KEYS = {"LATHE_SOURCE_ACCESS_KEY": "accessKey", "LATHE_SOURCE_SECRET_KEY": "secretKey"}  # variable -> key


@dataclass
class DatasetObserved(Observed):
    run: RunState = RunState("Absent")  # the current run: its report when it wrote one, else the executor's view
    stored_versions: list[str] | None = None  # published versions in the store, when listed
    created: dict[str, datetime] = field(default_factory=dict)  # stored version -> its manifest's createdAt
    # versions TrainingRuns, batch ModelDeployments and DriftMonitors use or registered models were trained on
    referenced: set[str] = field(default_factory=set)
    # the credentials Secret's labels (its metadata alone), read when a run is to start; None when it does not exist
    secret_labels: dict[str, str] | None = None


@dataclass
class DatasetPlan(Plan):
    start: RunRequest | None = None
    delete_versions: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return super().empty and self.start is None and not self.delete_versions


def spec_hash(dataset: Dataset) -> str:
    canonical = json.dumps(dataset.spec.dump(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def retry_delay(attempt: int) -> float:
    return min(RETRY_BASE * 2**attempt, RETRY_MAX)


def _schedule_problem(dataset: Dataset, now: datetime) -> str | None:
    refresh = dataset.spec.refresh
    return schedule.problem(now, refresh.interval, refresh.cron) if refresh else None


def _slot(dataset: Dataset, now: datetime) -> int:
    """The refresh period now; 0 for a schedule that cannot be used (plan refuses it with its reason)."""
    refresh = dataset.spec.refresh
    if refresh is None or _schedule_problem(dataset, now):
        return 0
    return schedule.slot(now, refresh.interval, refresh.cron)


def current_run(dataset: Dataset, now: datetime) -> tuple[str, int]:
    """The run the spec and refresh schedule call for now, and its attempt number."""
    base = names.child(dataset.name, 30, spec_hash(dataset), _slot(dataset, now))
    last = dataset.status.last_run
    if last is not None and last.outcome == "Running" and last.name.startswith(base.rsplit("-", 1)[0] + "-"):
        return last.name, last.attempt  # finish the run in flight before the next refresh starts
    if last is None or last.name.rsplit("-", 1)[0] != base:
        return f"{base}-0", 0
    attempt = last.attempt
    if last.outcome == "Failed" and last.transient and last.finished_at is not None:
        if now >= last.finished_at + timedelta(seconds=retry_delay(attempt)):
            attempt += 1
    return f"{base}-{attempt}", attempt


def ingest_request(dataset: Dataset, run: str, parent: str | None) -> RunRequest:
    """``lathe ingest`` for this Dataset: its spec in the environment, source credentials from their Secret."""
    source = dataset.spec.source
    args = ("ingest", "--namespace", dataset.namespace, "--name", dataset.name, "--run", run)
    secrets = {}
    if source.credentials_secret:  # the documented keys only, whatever a spec that bypassed the CRD names
        name = source.credentials_secret.name
        secrets = {variable: (name, key) for variable, key in SOURCE_KEYS.items()}
    return RunRequest(
        namespace=dataset.namespace,
        name=run,
        component="ingest",
        args=args + (("--parent", parent) if parent else ()),
        labels={**MANAGED_BY, "lathe.dev/dataset": dataset.name, "app.kubernetes.io/component": "ingest"},
        env={"LATHE_DATASET_SPEC": json.dumps(dataset.spec.dump(), sort_keys=True)},
        secret_env=secrets,
        source_file=(source.config_map.name, source.config_map.key) if source.config_map else None,
        owner=owner_reference(dataset),
        generation=dataset.generation,
    )


def _invalid_schedule(dataset: Dataset, now: datetime) -> sources.Refusal | None:
    why = _schedule_problem(dataset, now)
    return sources.Refusal("InvalidSchedule", f"spec.refresh cannot be used: {why}") if why else None


def _next_refresh(dataset: Dataset, now: datetime) -> float | None:
    refresh = dataset.spec.refresh
    if refresh is None or _schedule_problem(dataset, now):
        return None
    if refresh.interval:
        period = schedule.seconds(refresh.interval)
        return period - (now.timestamp() % period) + 1
    return 60.0 - now.second + 1  # cron fires on whole minutes: look again just after the next one


def _outcome(observed: RunState) -> dict[str, Any]:
    if observed.phase == "Done" and observed.report:
        r = observed.report
        return {
            "outcome": r["outcome"],
            "reason": r["reason"],
            "message": r.get("message", ""),
            "transient": bool(r.get("transient")),
            "finished_at": r.get("finishedAt"),
        }
    if observed.phase == "Failed":
        return {
            "outcome": "Failed",
            "reason": "IngestFailed",
            "transient": True,
            "message": f"Ingest run crashed without a report: {observed.message}",
        }
    return {"outcome": "Running", "reason": "Ingesting", "message": "", "transient": False}


def _summary(validation: dict[str, Any]) -> ValidationSummary:
    """A report's validation summary cut to what status holds: the first failures, each in a line's length.

    A failed expectation's message can carry a whole value_set; the full result stays in the store."""
    failures = [str(f)[:FAILURE_MAX] for f in (validation.get("failures") or [])[:FAILURES]]
    return ValidationSummary.model_validate({**validation, "failures": failures})


def _refused(refusal: sources.Refusal, last: IngestRun | None, name: str, now: datetime) -> dict[str, Any]:
    """The outcome of a run the source rules refused: nothing was started. Planning it again keeps its
    finishedAt, so its back-off runs out."""
    kept = last.finished_at if last is not None and (last.name, last.reason) == (name, refusal.reason) else None
    return {
        "outcome": "Failed",
        "reason": refusal.reason,
        "message": refusal.message,
        "transient": refusal.transient,
        "finished_at": kept or now,
    }


def plan(
    dataset: Dataset, observed: DatasetObserved, policy: sources.SourcePolicy = sources.SourcePolicy()
) -> DatasetPlan:
    """Level-based: the same Dataset, observations and source policy always give the same plan."""
    now, status = observed.now, dataset.status
    name, attempt = current_run(dataset, now)
    last = status.last_run
    fresh = last is None or last.name != name or last.outcome == "Running"  # report not folded in yet
    absent = observed.run.phase == "Absent"
    refusal = (
        (_invalid_schedule(dataset, now) or sources.check(dataset, policy, observed.secret_labels)) if absent else None
    )
    result = _refused(refusal, last, name, now) if refusal else _outcome(observed.run)
    if result["outcome"] == "Failed" and not result.get("finished_at"):  # crashed without a report: its back-off
        seen = last.finished_at if last and last.name == name and last.outcome == "Failed" else None
        result["finished_at"] = seen or now  # counts from when it was first seen failed, so the retry comes
    result.update(message=str(result.get("message") or "")[:MESSAGE_MAX], reason=str(result["reason"])[:REASON_MAX])
    start = ingest_request(dataset, name, status.current_version) if absent and refusal is None else None
    run = IngestRun(
        name=name,
        attempt=attempt,
        started_at=last.started_at if last and last.name == name else now,
        **{k: v for k, v in result.items() if v is not None},
    )
    if result["outcome"] == "Running" and not result["message"]:
        run.message = f"Ingest run {name} is running"
    update: dict[str, Any] = {"last_run": run, "observed_generation": dataset.generation}
    report = observed.run.report or {}
    events: list[Event] = []
    if fresh and result["outcome"] in ("Published", "Unchanged"):
        update.update(
            current_version=report["version"], rows=report["rows"], columns=report["columns"], uri=report.get("uri")
        )
        if report.get("validation"):
            update["validation"] = _summary(report["validation"])
        if result["outcome"] == "Published" or report["version"] != status.current_version:
            update["history"] = _history(status.history, report, "Passed", now)
    elif fresh and result["reason"] == "ValidationFailed":
        update["validation"] = _summary(report.get("validation") or {})
        if report.get("version"):
            update["history"] = _history(status.history, report, "Failed", now)
    if result["outcome"] == "Running":  # a refresh keeps the current version Ready meanwhile
        verdict = cond.working(result["reason"], run.message, ready=cond.is_true(status.conditions, cond.READY))
    elif result["outcome"] == "Failed":
        verdict = cond.failed(result["reason"], run.message, retrying=result["transient"])
    else:
        verdict = cond.available(result["reason"], run.message)
    conditions = cond.standard(status.conditions, verdict, generation=dataset.generation, now=now)
    update.update(conditions=conditions, phase=cond.phase(conditions))
    new_status = status.model_copy(update=update)
    deletions = _retention(dataset, new_status.current_version, observed)
    if start is not None:
        events.append(Event("Normal", "StartedIngest", f"Started ingest run {name}"))
    events += transition_events(status.conditions, conditions)
    events += [
        Event("Normal", "DeletedVersion", f"Deleted version {v} (retention keeps {dataset.spec.retention.keep})")
        for v in deletions
    ]
    if result["outcome"] == "Running":
        requeue = RUNNING_POLL
    elif result["outcome"] == "Failed" and result["transient"]:
        requeue = retry_delay(attempt)
    else:
        requeue = _next_refresh(dataset, now)
    return DatasetPlan(
        status=new_status.dump(), events=events, requeue_after=requeue, start=start, delete_versions=deletions
    )


def _history(history: list[VersionRecord], report: dict[str, Any], verdict: str, now: datetime) -> list[VersionRecord]:
    entry = VersionRecord(
        version=report["version"], time=report.get("finishedAt") or now, rows=report["rows"], validation=verdict
    )
    return [entry, *history][:HISTORY]


def _retention(dataset: Dataset, current: str | None, observed: DatasetObserved) -> list[str]:
    """Stored versions older than the newest ``keep`` by their manifests' createdAt that nothing references.

    Ranked from the store, not ``status.history``: history is capped and holds failed validations.
    A version without a known createdAt, or tied with the ``keep``-th newest (createdAt has whole
    seconds), is kept: retention deletes only what it can rank as old.
    """
    stored, keep = observed.stored_versions, dataset.spec.retention.keep
    if stored is None or len(stored) <= keep:
        return []
    dated = sorted((observed.created[v] for v in stored if v in observed.created), reverse=True)
    if len(dated) <= keep:
        return []
    cutoff = dated[keep - 1]
    kept = observed.referenced | ({current} if current else set())
    return sorted(v for v in stored if v not in kept and v in observed.created and observed.created[v] < cutoff)
