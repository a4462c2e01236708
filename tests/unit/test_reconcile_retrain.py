"""The closed loop with plain values: one retrain per drift episode, each phase handed on, nothing twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from lathe_core.runs import RunState
from lathe_operator.api.v1alpha1 import DriftMonitor, ModelDeployment
from lathe_operator.reconcile import canary
from lathe_operator.reconcile import drift_monitor as reconcile
from lathe_operator.reconcile import retrain as loop
from lathe_operator.reconcile.drift_monitor import DeploymentView, DriftObserved

from .test_reconcile_drift_monitor import META, NOW, report

VERSION = "sha256:" + "2" * 64
NEW_VERSION = "sha256:" + "3" * 64
LINEAGE = loop.Lineage(
    model="clf",
    version=3,
    dataset="digits",
    dataset_version=VERSION,
    dataset_spec={
        "source": {"uri": "s3://raw/digits.csv", "format": "csv", "credentialsSecret": {"name": "creds"}},
        "target": "label",
        "expectations": [{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}}],
        "refresh": {"interval": "1h"},
    },
    run_spec={
        "dataset": {"name": "digits"},
        "model": {"name": "clf", "type": "mlp", "hyperparameters": {"hidden": [64], "epochs": 20}, "seed": 7},
        "gates": [{"metric": "accuracy", "min": 0.9}],
        "baselineVersion": 1,
    },
)
RETRAIN = {
    "cooldown": "1h",
    "data": {"minLabelled": 100},
    "trainingRunTemplate": {"model": {"hyperparameters": {"epochs": 5}}},
}


def make(status: dict[str, Any] | None = None) -> DriftMonitor:
    return DriftMonitor.model_validate(
        {
            "kind": "DriftMonitor",
            "metadata": META,
            "status": status or {},
            "spec": {"deployment": "web", "interval": "5m", "action": "retrain", "retrain": RETRAIN},
        }
    )


def step(
    monitor: DriftMonitor,
    run: RunState,
    now: datetime = NOW,
    canary_view: loop.CanaryView = loop.CanaryView(),
    served: int = 3,
    **seen: Any,
) -> tuple[reconcile.DriftPlan, DriftMonitor]:
    observed = DriftObserved(
        now=now,
        deployment=DeploymentView(True, "clf", served, canary_view),
        run=run,
        loop=loop.LoopObserved(lineage=LINEAGE, canary=canary_view, **seen),
    )
    plan = reconcile.plan(monitor, observed)
    return plan, DriftMonitor.model_validate({**monitor.dump(), "status": plan.status})


def ready_message(monitor: DriftMonitor) -> str:
    return next(c.message for c in monitor.status.conditions if c.type == "Ready")


def reasons(plan: reconcile.DriftPlan) -> list[str]:
    return [e.reason for e in plan.events]


def drifted_once() -> tuple[reconcile.DriftPlan, DriftMonitor]:
    return step(make({"check": "watch-c1"}), report("Drift"))


def test_drift_opens_an_episode_and_starts_one_harvest_over_the_data_window() -> None:
    plan, monitor = drifted_once()
    assert monitor.status.episode is not None and monitor.status.episode.check == "watch-c1"
    [record] = monitor.status.retrains
    assert (record.name, record.phase, record.episode) == ("watch-retrain-1", "Harvesting", "watch-c1")
    harvest = plan.retrain.harvest
    assert harvest is not None and harvest.name == "watch-retrain-1-data" and harvest.args[0] == "harvest"
    sent = json.loads(harvest.env["LATHE_HARVEST_REQUEST"])
    assert sent["model"] == {"name": "clf", "version": 3} and sent["merge"] == "append"
    assert sent["window"]["end"] == NOW.isoformat()  # the monitor's window (1h) when data.window is omitted
    assert datetime.fromisoformat(sent["window"]["start"]) == NOW - timedelta(hours=1)
    assert "RetrainStarted" in reasons(plan)
    assert "; retrain watch-retrain-1: harvesting" in ready_message(monitor)
    assert ready_message(monitor).startswith("Drift found")
    assert next(c for c in monitor.status.conditions if c.type == "Progressing").status == "True"


def test_a_restart_before_status_was_written_plans_the_same_names() -> None:
    first, _ = drifted_once()
    again, _ = drifted_once()
    assert first.retrain.harvest == again.retrain.harvest


def test_each_phase_hands_on_and_the_promotion_closes_the_episode() -> None:
    _, monitor = drifted_once()
    plan, monitor = step(monitor, report("Drift"), harvest=RunState("Running"))
    assert plan.retrain.harvest is None and monitor.status.retrains[-1].phase == "Harvesting"
    assert len(monitor.status.retrains) == 1

    written = {"outcome": "Succeeded", "uri": "s3://lathe/retrain/ml/watch/r.parquet", "message": "120 labelled"}
    plan, monitor = step(monitor, report("Drift"), harvest=RunState("Done", written))
    assert monitor.status.retrains[-1].phase == "Publishing"
    data = plan.retrain.dataset
    assert data is not None and data["metadata"]["name"] == "watch-retrain"
    assert data["spec"]["source"] == {"uri": written["uri"], "format": "parquet"}  # no credentials: Lathe's store
    assert "refresh" not in data["spec"] and data["spec"]["expectations"] == LINEAGE.dataset_spec["expectations"]
    assert data["metadata"]["ownerReferences"][0]["kind"] == "DriftMonitor"

    published = loop.PublishedView(True, written["uri"], True, "Published", NEW_VERSION)
    plan, monitor = step(monitor, report("Drift"), dataset=published)
    record = monitor.status.retrains[-1]
    assert (record.phase, record.dataset_version) == ("Training", NEW_VERSION)
    run = plan.retrain.training_run
    assert run is not None and run["metadata"]["name"] == "watch-retrain-1"
    assert run["spec"]["dataset"] == {"name": "watch-retrain", "version": NEW_VERSION}
    assert run["spec"]["model"]["hyperparameters"] == {"hidden": [64], "epochs": 5}  # the template over the run
    assert run["spec"]["model"]["name"] == "clf" and "baselineVersion" not in run["spec"]
    assert run["metadata"]["ownerReferences"][0]["name"] == "watch"

    trained = loop.TrainingView(True, "Ready", "Registered", "", 4)
    plan, monitor = step(monitor, report("Drift"), dataset=published, training=trained)
    assert monitor.status.retrains[-1].phase == "Canary" and plan.retrain.candidate == 4

    rolling = loop.CanaryView(4, "Progressing", 4)
    plan, monitor = step(monitor, report("Drift"), canary_view=rolling, dataset=published, training=trained)
    assert plan.retrain.candidate is None and monitor.status.retrains[-1].phase == "Canary"

    promoted = loop.CanaryView(4, "Promoted", 4)
    plan, monitor = step(monitor, report("Drift"), canary_view=promoted, dataset=published, training=trained)
    assert monitor.status.retrains[-1].phase == "Promoted" and monitor.status.retrains[-1].finished == NOW
    assert monitor.status.episode is None and "RetrainPromoted" in reasons(plan)

    of_before = report("Drift", source={"type": "logs", "model": {"name": "clf", "version": 3}})
    plan, monitor = step(monitor, of_before, canary_view=promoted, served=4)  # a check of the model served before
    assert monitor.status.episode is None and len(monitor.status.retrains) == 1
    of_now = report("Drift", source={"type": "logs", "model": {"name": "clf", "version": 4}})
    plan, monitor = step(monitor, of_now, canary_view=promoted, served=4)
    assert monitor.status.episode is not None and len(monitor.status.retrains) == 1  # the cooldown holds it


def test_failed_gates_end_the_retrain_and_the_episode_waits_for_a_clean_check() -> None:
    _, monitor = drifted_once()
    monitor = make({**monitor.status.dump(), "check": "watch-c1"})
    record = monitor.status.retrains[-1].model_copy(
        update={"phase": "Training", "dataset": "watch-retrain", "dataset_version": NEW_VERSION}
    )
    monitor = make({**monitor.status.dump(), "retrains": [record.dump()]})
    failed = loop.TrainingView(True, "Failed", "GateFailed", "accuracy 0.8 < 0.9")
    plan, monitor = step(monitor, report("Drift"), training=failed)
    assert monitor.status.retrains[-1].phase == "Failed" and "GateFailed" in monitor.status.retrains[-1].message
    assert [e.type for e in plan.events if e.reason == "RetrainFailed"] == ["Warning"]

    later = NOW + timedelta(hours=2)  # past the cooldown, still the same episode: no second retrain
    plan, monitor = step(make({**monitor.status.dump(), "check": "watch-c2"}), report("Drift"), now=later)
    assert len(monitor.status.retrains) == 1 and plan.retrain.harvest is None

    _, monitor = step(make({**monitor.status.dump(), "check": "watch-c3"}), report("NoDrift"), now=later)
    assert monitor.status.episode is None
    plan, monitor = step(make({**monitor.status.dump(), "check": "watch-c4"}), report("Drift"), now=later)
    assert [r.name for r in monitor.status.retrains] == ["watch-retrain-1", "watch-retrain-2"]
    assert plan.retrain.harvest is not None and plan.retrain.harvest.name == "watch-retrain-2-data"


def test_a_new_episode_within_the_cooldown_waits_for_it() -> None:
    _, monitor = drifted_once()
    done = monitor.status.retrains[-1].model_copy(update={"phase": "Promoted"})
    status = {**monitor.status.dump(), "episode": None, "retrains": [done.dump()], "check": "watch-c9"}
    soon = NOW + timedelta(minutes=10)
    plan, monitor = step(make(status), report("Drift"), now=soon)
    assert monitor.status.episode is not None and len(monitor.status.retrains) == 1
    assert "held by the cooldown until 2026-11-26T13:02:30+00:00" in ready_message(monitor)
    assert plan.requeue_after is not None and plan.requeue_after <= 300


def test_too_few_labels_or_no_lineage_hold_the_retrain_back() -> None:
    plan, monitor = step(make({"check": "watch-c1"}), report("Drift", labelled=20))
    assert not monitor.status.retrains and plan.retrain.harvest is None
    assert "waits for 100 labelled requests in a check (now 20)" in ready_message(monitor)


def test_a_clean_check_during_a_retrain_keeps_the_episode() -> None:
    _, monitor = drifted_once()
    _, monitor = step(make({**monitor.status.dump(), "check": "watch-c2"}), report("NoDrift"))
    assert monitor.status.episode is not None and monitor.status.retrains[-1].phase == "Harvesting"


def test_a_refused_harvest_fails_the_retrain_with_its_reason() -> None:
    _, monitor = drifted_once()
    refused = {"outcome": "Failed", "reason": "InsufficientLabels", "message": "40 labelled requests"}
    plan, monitor = step(monitor, report("Drift"), harvest=RunState("Done", refused))
    assert monitor.status.retrains[-1].phase == "Failed"
    assert monitor.status.retrains[-1].message == "InsufficientLabels: 40 labelled requests"


def test_refused_data_fails_the_retrain() -> None:
    _, monitor = drifted_once()
    record = monitor.status.retrains[-1].model_copy(update={"phase": "Publishing", "data_uri": "s3://b/k"})
    monitor = make({**monitor.status.dump(), "retrains": [record.dump()]})
    refused = loop.PublishedView(True, "s3://b/k", True, "Failed", None, "label: 3 values not in the set")
    _, monitor = step(monitor, report("Drift"), dataset=refused)
    assert monitor.status.retrains[-1].phase == "Failed"
    assert "refused the retrain data: label: 3 values" in monitor.status.retrains[-1].message


def deployment(annotation: str | None, spec_canary: dict[str, Any] | None = None) -> ModelDeployment:
    meta = {"name": "web", "namespace": "ml", "generation": 2}
    if annotation is not None:
        meta["annotations"] = {canary.CANDIDATE: annotation}
    spec: dict[str, Any] = {"model": {"name": "clf", "version": 1}}
    if spec_canary:
        spec["canary"] = spec_canary
    return ModelDeployment.model_validate({"kind": "ModelDeployment", "metadata": meta, "spec": spec})


def test_an_annotated_candidate_newer_than_spec_becomes_the_canary_with_specs_steps() -> None:
    md = canary.effective(deployment("4", {"version": 2, "steps": [25, 100]}))
    assert md.spec.canary is not None and (md.spec.canary.version, md.spec.canary.steps) == (4, [25, 100])
    plain = canary.effective(deployment("3"))
    assert plain.spec.canary is not None and plain.spec.canary.steps == [10, 50, 100]  # the defaults
    for older in ("2", "1", "x", ""):
        md = deployment(older, {"version": 2})
        assert canary.effective(md) is md
