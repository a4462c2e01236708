"""DriftMonitor reconciler with plain values: one check per interval, verdicts, reasons, no repeated Events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_core.runs import RunState
from lathe_operator.api.v1alpha1 import DriftMonitor
from lathe_operator.reconcile import drift_monitor as reconcile
from lathe_operator.reconcile.drift_monitor import DeploymentView, DriftObserved
from lathe_operator.reconcile.plan import DatasetView

NOW = datetime(2026, 11, 26, 12, 2, 30, tzinfo=UTC)
META = {"name": "watch", "namespace": "ml", "uid": "abcdef12-3456", "generation": 1}
SERVING = DeploymentView(True, "clf", 3)


def make(status: dict[str, Any] | None = None, **spec: Any) -> DriftMonitor:
    return DriftMonitor.model_validate(
        {
            "kind": "DriftMonitor",
            "metadata": META,
            "status": status or {},
            "spec": {"deployment": "web", "interval": "5m", **spec},
        }
    )


def step(
    monitor: DriftMonitor, run: RunState, now: datetime = NOW, deployment: DeploymentView = SERVING
) -> tuple[reconcile.DriftPlan, DriftMonitor]:
    plan = reconcile.plan(monitor, DriftObserved(now=now, deployment=deployment, run=run))
    return plan, DriftMonitor.model_validate({**monitor.dump(), "status": plan.status})


def ready(monitor: DriftMonitor) -> tuple[str, str]:
    c = next(c for c in monitor.status.conditions if c.type == "Ready")
    return c.status, c.reason


def report(verdict: str = "NoDrift", **extra: Any) -> RunState:
    columns = [
        {
            "name": "pixel_3_3",
            "kind": "numeric",
            "status": "Checked",
            "test": "wasserstein",
            "statistic": 0.4,
            "pValue": None,
            "threshold": 0.1,
            "drifted": verdict == "Drift",
        }
    ]
    body = {
        "outcome": "Succeeded",
        "verdict": verdict,
        "driftShare": 1.0 if verdict == "Drift" else 0.0,
        "columns": columns,
        "samples": 900,
        "labelled": 120,
        "liveAccuracy": 0.93,
        "message": f"{verdict} found",
        "window": {"start": "2026-11-26T11:00:00+00:00", "end": "2026-11-26T12:00:00+00:00"},
        "reference": {"name": "digits", "version": "sha256:" + "1" * 64},
        "page": "file:///r.html",
        "finishedAt": NOW.isoformat(),
        **extra,
    }
    return RunState("Done", body)


def test_one_check_per_interval_slot_over_the_window_that_ends_there() -> None:
    plan, checking = step(make(), RunState("Absent"))
    assert plan.start is not None and plan.start.name == f"watch-abcdef12-1-{int(NOW.timestamp() // 300)}"
    sent = json.loads(plan.start.env["LATHE_DRIFT_REQUEST"])
    assert sent["window"] == {
        "start": "2026-11-26T11:00:00+00:00",
        "end": "2026-11-26T12:00:00+00:00",
        "minSamples": 500,
    }
    assert sent["source"] == {"type": "logs", "deployment": "web", "model": {"name": "clf", "version": 3}}
    assert ready(checking) == ("False", "Checking") and plan.requeue_after == reconcile.POLL
    assert checking.status.check == plan.start.name
    again, same = step(checking, RunState("Running"), NOW + timedelta(minutes=7))  # a slow check is waited for
    assert again.empty and same.status == checking.status


def test_a_check_that_outlives_its_slot_is_folded_before_the_next_starts() -> None:
    _, checking = step(make(), RunState("Absent"))
    first = checking.status.check
    plan, done = step(checking, report("Drift"), NOW + timedelta(minutes=5))
    assert done.status.verdict == "Drift" and plan.start is not None and plan.start.name != first
    assert done.status.check == plan.start.name and ready(done) == ("True", "DriftDetected")


def test_verdicts_set_conditions_and_only_a_change_is_an_event() -> None:
    _, checking = step(make(), RunState("Absent"))
    plan, calm = step(checking, report())
    assert ready(calm) == ("True", "NoDrift") and calm.status.verdict == "NoDrift" and calm.status.samples == 900
    assert calm.status.report_uri == "file:///r.html" and calm.status.features[0].name == "pixel_3_3"
    assert plan.requeue_after == 151  # 12:02:30 -> just after 12:05:00
    later = NOW + timedelta(minutes=5)
    plan, next_check = step(calm, RunState("Absent"), later)
    assert plan.start is not None and ready(next_check) == ("True", "NoDrift") and plan.events == []
    plan, drifted = step(next_check, report("Drift"), later)
    assert ready(drifted) == ("True", "DriftDetected") and drifted.status.phase == "Degraded"
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "DriftDetected")]
    repeat, same = step(drifted, report("Drift"), later)
    assert repeat.empty and same.status == drifted.status


def test_low_live_accuracy_degrades_and_failures_name_their_reason() -> None:
    monitor = make(accuracy={"min": 0.95})
    _, low = step(monitor, report(accuracyBelow=True))
    assert ready(low) == ("True", "AccuracyBelowMinimum") and low.status.phase == "Degraded"
    _, missing = step(monitor, RunState("Done", {"outcome": "Failed", "reason": "ReferenceMissing", "message": "no"}))
    assert ready(missing) == ("False", "ReferenceMissing") and missing.status.phase == "Failed"
    _, crashed = step(monitor, RunState("Failed", message="exit code 1: OOMKilled"))
    assert ready(crashed) == ("False", "CheckFailed") and "OOMKilled" in crashed.status.conditions[0].message
    plan, gone = step(monitor, RunState("Absent"), deployment=DeploymentView())
    assert plan.start is None and ready(gone) == ("False", "DeploymentNotFound")


def test_dataset_source_needs_no_deployment_and_pins_current_versions() -> None:
    monitor = DriftMonitor.model_validate(
        {
            "kind": "DriftMonitor",
            "metadata": META,
            "spec": {"source": {"type": "dataset", "dataset": {"name": "digits"}}, "reference": {"name": "digits"}},
        }
    )
    current = "sha256:" + "2" * 64
    observed = DriftObserved(
        now=NOW,
        deployment=DeploymentView(),
        run=RunState("Absent"),
        reference=DatasetView(True, "sha256:" + "1" * 64),
        source=DatasetView(True, current),
    )
    plan = reconcile.plan(monitor, observed)
    assert plan.start is not None
    sent = json.loads(plan.start.env["LATHE_DRIFT_REQUEST"])
    assert sent["source"] == {"type": "dataset", "name": "digits", "version": current}
    assert sent["reference"] == {"name": "digits", "version": "sha256:" + "1" * 64}


def test_a_check_that_found_nothing_clears_the_figures_of_the_one_before() -> None:
    _, drifted = step(make(), report("Drift"))
    later = NOW + timedelta(minutes=5)
    plan, thin = step(drifted, report("InsufficientData", driftShare=None, liveAccuracy=None, prediction=None), later)
    assert plan.status["driftShare"] is None and plan.status["liveAccuracy"] is None  # a merge patch removes them
    assert thin.status.verdict == "InsufficientData"


def test_unbounded_scores_show_as_absent() -> None:
    columns = [
        {
            "name": "colour",
            "kind": "categorical",
            "status": "Checked",
            "test": "chisquare",
            "statistic": float("inf"),
            "pValue": 0.0,
            "threshold": 0.05,
            "drifted": True,
        }
    ]
    _, found = step(make(), report("Drift", columns=columns))
    assert found.status.features[0].score is None and found.status.features[0].p_value == 0.0
