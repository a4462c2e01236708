"""ModelDeployment reconciler with plain values: canary steps, promotion, rollback, override, Seldon rendering, offline runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lathe_core.runs import RunState
from lathe_core.settings import StoreSettings
from lathe_operator.api.v1alpha1 import ModelDeployment
from lathe_operator.reconcile import canary, jobs, offline, seldon
from lathe_operator.reconcile import model_deployment as reconcile
from lathe_operator.reconcile.canary import VersionMetrics
from lathe_operator.reconcile.model_deployment import DeploymentObserved, ServingView
from lathe_operator.reconcile.plan import DatasetView

NOW = datetime(2026, 1, 1, tzinfo=UTC)
META = {"name": "digits", "namespace": "ns", "uid": "abcdef12-3456", "generation": 1}
UP = ServingView("Available", "ok", "http://127.0.0.1:1/api/v1.0/predictions")
CANARY = {
    "version": 4,
    "steps": [10, 50, 100],
    "analysis": {"window": "1m", "minRequests": 100, "maxErrorRate": 0.05, "maxP99Ms": 50, "minAccuracy": 0.8},
}
GOOD = VersionMetrics(requests=500, error_rate=0.0, p99_ms=3.0, accuracy=0.95)


def make(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, generation: int = 1
) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "kind": "ModelDeployment",
            "metadata": {**META, "generation": generation},
            "status": status or {},
            "spec": {"model": {"name": "clf", "version": 3}, **(spec or {})},
        }
    )


def step(md: ModelDeployment, now: datetime = NOW, **observed: Any) -> tuple[reconcile.DeploymentPlan, ModelDeployment]:
    observed.setdefault("serving", UP)
    plan = reconcile.plan(md, DeploymentObserved(now=now, **observed))
    status = {k: v for k, v in plan.status.items() if v is not None}
    return plan, ModelDeployment.model_validate({**md.dump(), "status": status})


def ready(md: ModelDeployment) -> tuple[str, str]:
    c = next(c for c in md.status.conditions if c.type == "Ready")
    return c.status, c.reason


def traffic(md: ModelDeployment) -> list[tuple[int, int]]:
    return [(t.version, t.percent) for t in md.status.traffic]


def test_stable_only_serves_all_traffic_and_follows_the_backend() -> None:
    plan, creating = step(make(), serving=ServingView("Creating"))
    assert plan.serve == reconcile.Serve([(3, 100)], None) and ready(creating) == ("False", "Creating")
    _, up = step(creating)
    assert ready(up) == ("True", "Available") and up.status.serving == "3:100" and up.status.endpoint == UP.endpoint
    assert [h.action for h in up.status.history] == ["Deploy"]
    _, failed = step(up, serving=ServingView("Failed", "image pull backoff"))
    assert ready(failed) == ("False", "ServingFailed") and failed.status.phase == "Failed"


def test_a_restarted_server_is_said_in_the_ready_message() -> None:
    restarted = ServingView("Available", "ok", UP.endpoint, "server restarted 1 time, last after it killed by signal 9")
    _, up = step(make(), serving=restarted)
    said = next(c for c in up.status.conditions if c.type == "Ready")
    assert said.reason == "Available" and said.message == (
        "Serving version 3 100%; server restarted 1 time, last after it killed by signal 9"
    )


def test_missing_model_version_is_model_not_found_and_serves_nothing() -> None:
    plan, md = step(make({"canary": CANARY}), missing=[4])
    assert (
        plan.serve is None
        and ready(md) == ("False", "ModelNotFound")
        and "version 4" in md.status.conditions[0].message
    )


def test_canary_steps_then_promotes_after_each_window_with_enough_requests() -> None:
    plan, md = step(make({"canary": CANARY}))
    assert traffic(md) == [(3, 90), (4, 10)] and ready(md) == ("True", "CanaryProgressing")
    assert "CanaryStarted" in [e.reason for e in plan.events]
    plan, md = step(md, NOW + timedelta(seconds=30), metrics={4: GOOD})
    assert traffic(md) == [(3, 90), (4, 10)] and canary.decide(md, NOW + timedelta(seconds=30), {}).requeue == 30
    assert plan.requeue_after == reconcile.POLL  # online serving is supervised more often than the window ends
    few = VersionMetrics(requests=20, error_rate=0.0)
    _, md = step(md, NOW + timedelta(seconds=61), metrics={4: few})
    assert traffic(md) == [(3, 90), (4, 10)] and "20 of 100 requests" in md.status.conditions[0].message
    plan, md = step(md, NOW + timedelta(seconds=62), metrics={4: GOOD, 3: GOOD})
    assert traffic(md) == [(3, 50), (4, 50)] and "CanaryStep" in [e.reason for e in plan.events]
    plan, md = step(md, NOW + timedelta(seconds=123), metrics={4: GOOD, 3: GOOD})
    assert traffic(md) == [(4, 100)] and ready(md) == ("True", "CanaryPromoted") and md.status.serving == "4:100"
    assert [h.action for h in md.status.history] == ["Deploy", "Step", "Promote"]
    assert md.status.canary is not None and md.status.canary.phase == "Promoted"


def test_canary_rolls_back_on_errors_latency_or_accuracy_and_retries_on_a_new_generation() -> None:
    for bad, words in (
        (VersionMetrics(500, 0.2, 3.0, 0.9), "error rate 20.00%"),
        (VersionMetrics(500, 0.0, 80.0, 0.9), "p99 80.0 ms > 50 ms"),
        (VersionMetrics(500, 0.0, 3.0, 0.5), "live accuracy 0.500 < 0.8"),
        (VersionMetrics(500, 0.0, 3.0, None, 61.5), "live MAE 61.5 > 55"),
    ):
        _, md = step(make({"canary": {**CANARY, "analysis": {**CANARY["analysis"], "maxMae": 55}}}))
        plan, md = step(md, NOW + timedelta(minutes=2), metrics={4: bad, 3: GOOD})
        assert traffic(md) == [(3, 100)] and ready(md) == ("True", "CanaryRolledBack") and md.status.phase == "Degraded"
        event = next(e for e in plan.events if e.reason == "CanaryRolledBack")
        assert event.type == "Warning" and words in event.message and "stable 500 requests" in event.message
        _, same = step(md, NOW + timedelta(minutes=5), metrics={4: GOOD})
        assert traffic(same) == [(3, 100)]  # stays rolled back
    edited = make({"canary": CANARY}, status=md.dump()["status"], generation=2)
    _, retried = step(edited, NOW + timedelta(minutes=6))
    assert traffic(retried) == [(3, 90), (4, 10)]


def test_manual_traffic_wins_over_the_canary() -> None:
    _, md = step(make({"canary": CANARY}))
    override = make(
        {"canary": CANARY, "traffic": [{"version": 3, "percent": 100}]}, status=md.dump()["status"], generation=2
    )
    plan, md = step(override, NOW + timedelta(minutes=5), metrics={4: GOOD})
    assert traffic(md) == [(3, 100)] and ready(md) == ("True", "TrafficOverride")
    assert md.status.history[-1].action == "Override" and "TrafficOverride" in [e.reason for e in plan.events]


def test_removing_the_canary_clears_its_status() -> None:
    _, md = step(make({"canary": CANARY}))
    plan, _ = step(make(status=md.dump()["status"], generation=2))
    assert plan.status["canary"] is None and plan.status["traffic"] == [{"version": 3, "percent": 100}]


def test_seldon_deployment_has_predictors_traffic_shadow_logger_and_an_owner() -> None:
    md = make(
        {
            "canary": CANARY,
            "shadow": {"version": 5},
            "logging": {"sampleRate": 0.5},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetConcurrency": 16},
            "resources": {"cpu": "500m", "memory": "1Gi"},
            "graph": {"transformers": [{"name": "scale", "image": "example/scale:1"}]},
        }
    )
    uris = {v: f"s3://lathe/models/ns/clf/{v}/" for v in (3, 4, 5)}
    sd = seldon.seldon_deployment(
        md,
        [(3, 90), (4, 10)],
        5,
        uris,
        image="img",
        store=StoreSettings(),
        storage_secret="lathe-seldon-storage",
        logger_url="http://logger",
    )
    assert (
        sd["apiVersion"] == "machinelearning.seldon.io/v1"
        and sd["metadata"]["ownerReferences"][0]["uid"] == META["uid"]
    )
    predictors = sd["spec"]["predictors"]
    assert [(p["name"], p["traffic"], p.get("shadow", False)) for p in predictors] == [
        ("v3", 90, False),
        ("v4", 10, False),
        ("v5", 0, True),
    ]
    graph = predictors[1]["graph"]
    assert graph["type"] == "TRANSFORMER" and graph["children"][0]["modelUri"] == uris[4]
    assert graph["children"][0]["implementation"] == "LATHE_SERVER"
    assert graph["children"][0]["envSecretRefName"] == "lathe-seldon-storage"
    assert graph["children"][0]["logger"] == {"mode": "all", "url": "http://logger"}
    component = predictors[0]["componentSpecs"][0]
    assert component["hpaSpec"]["maxReplicas"] == 4 and "replicas" not in predictors[0]
    container = component["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"} and container["readinessProbe"]
    assert container["args"][-2:] == ["--sample-rate", "0.5"]  # the server logs sampled requests to the store
    assert "LATHE_STORE_ACCESS_KEY" in {e["name"] for e in container["env"]}
    assert component["spec"]["securityContext"]["runAsNonRoot"] is True
    found = {
        **sd,
        "status": {"state": "Available", "address": {"url": "http://digits-v3.ns:8000/api/v1.0/predictions"}},
    }
    assert seldon.observe(found) == (
        "Available",
        "SeldonDeployment digits is Available",
        found["status"]["address"]["url"],
    )
    assert seldon.observe(None)[0] == "Absent"


def test_batch_waits_for_its_dataset_starts_once_and_reports_rows() -> None:
    spec = {"mode": "batch", "batch": {"dataset": {"name": "digits"}}}
    plan, early = step(make(spec), missing=[3])
    assert ready(early) == ("False", "ModelNotFound") and plan.requeue_after  # the model may come yet
    _, md = step(make(spec), dataset=DatasetView(exists=False))
    assert ready(md) == ("False", "DatasetNotFound")
    plan, md = step(make(spec), dataset=DatasetView(True, "sha256:" + "1" * 64))
    assert plan.start is not None and plan.serve is None and plan.start.name == "digits-abcdef12-1"
    assert plan.start.args[:2] == ("score", "--namespace") and "sha256:" + "1" * 64 in plan.start.args
    plan, md = step(md, run=RunState("Running", progress={"rows": 1000}))
    assert plan.start is None and md.status.rows_scored == 1000
    report = {
        "outcome": "Succeeded",
        "uri": "s3://lathe/predictions/x/",
        "bytes": 10,
        "rows": 1797,
        "datasetVersion": "sha256:1",
        "modelVersion": 3,
    }
    plan, md = step(md, run=RunState("Done", report))
    assert ready(md) == ("True", "Scored") and md.status.output_uri == report["uri"] and md.status.rows_scored == 1797
    assert plan.requeue_after is None  # ended: not looked at again until the spec changes


def test_edge_failure_keeps_the_reason() -> None:
    plan, md = step(
        make({"mode": "edge", "edge": {"quantize": True}}),
        run=RunState(
            "Done", {"outcome": "Failed", "reason": "ChecksumMismatch", "message": "model fails its sha256 check"}
        ),
    )
    assert ready(md) == ("False", "ChecksumMismatch") and md.status.phase == "Failed"


def test_offline_job_runs_the_same_command_as_a_non_root_job_owned_by_the_deployment() -> None:
    md = make({"mode": "edge", "edge": {"quantize": True}, "resources": {"memory": "1Gi"}})
    request = offline.run_request(md, None)
    rendered = jobs.manifest(request, image="img", service_account="lathe-jobs", store=StoreSettings())
    assert rendered["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    pod = rendered["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert (
        container["args"] == ["lathe", *request.args]
        and request.args[0] == "bundle"
        and request.args[-1] == "--quantize"
    )
    assert container["resources"]["limits"] == {"memory": "1Gi"} and rendered["metadata"]["name"] == "digits-abcdef12-1"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    env = {e["name"]: e for e in container["env"]}
    assert env["LATHE_STORE_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "lathe-store", "key": "secretKey"}


def test_planning_a_steady_deployment_again_changes_nothing() -> None:
    first, up = step(make({"shadow": {"version": 5}}))
    assert first.promote == 3  # the model had no promoted version: the first stable one served becomes it
    again, same = step(up, NOW + timedelta(seconds=5), promoted=3)
    assert again.empty and same.status == up.status  # no Event, no child, the same status
    _, promoted = step(step(make({"canary": CANARY}))[1], NOW + timedelta(minutes=2), metrics={4: GOOD, 3: GOOD})
    _, promoted = step(promoted, NOW + timedelta(minutes=4), metrics={4: GOOD, 3: GOOD})
    again, same = step(promoted, NOW + timedelta(minutes=5), promoted=4)
    assert again.empty and same.status == promoted.status and traffic(same) == [(4, 100)]


def test_a_promotion_is_real_until_spec_model_version_changes() -> None:
    """Promoted: the registry's baseline and the stable version that a later canary rolls back to."""
    _, md = step(make({"canary": CANARY}), promoted=3)
    _, md = step(md, NOW + timedelta(minutes=2), metrics={4: GOOD, 3: GOOD}, promoted=3)
    plan, md = step(md, NOW + timedelta(minutes=4), metrics={4: GOOD, 3: GOOD}, promoted=3)
    assert plan.promote == 4 and md.status.stable is not None and md.status.stable.version == 4
    assert md.status.stable.spec_version == 3  # spec.model.version is untouched: GitOps owns spec
    later = make({"canary": {**CANARY, "version": 5}}, status=md.dump()["status"], generation=2)
    plan, md = step(later, NOW + timedelta(minutes=10), promoted=4)
    assert plan.promote is None and traffic(md) == [(4, 90), (5, 10)]  # against the promoted version, not 3
    plan, md = step(md, NOW + timedelta(minutes=12), metrics={5: VersionMetrics(500, 0.5), 4: GOOD}, promoted=4)
    assert traffic(md) == [(4, 100)] and md.status.canary is not None and md.status.canary.phase == "RolledBack"
    moved = ModelDeployment.model_validate({**md.dump(), "spec": {"model": {"name": "clf", "version": 6}}})
    plan, md = step(moved, NOW + timedelta(minutes=13), promoted=4)
    assert traffic(md) == [(6, 100)] and md.status.stable.version == 6 and plan.promote is None  # spec wins


def test_a_new_spec_model_version_wins_over_a_promotion_even_with_the_canary_left_in_spec() -> None:
    single = {**CANARY, "steps": [100]}
    _, md = step(make({"canary": single}), promoted=3)
    assert md.status.stable is not None and md.status.stable.version == 4 and traffic(md) == [(4, 100)]
    moved = ModelDeployment.model_validate(
        {**md.dump(), "spec": {"model": {"name": "clf", "version": 5}, "canary": single}}
    )
    _, md = step(moved, NOW + timedelta(minutes=1), promoted=4)
    assert traffic(md) == [(5, 100)] and md.status.stable.version == 5
    dropped = ModelDeployment.model_validate({**md.dump(), "spec": {"model": {"name": "clf", "version": 5}}})
    _, md = step(dropped, NOW + timedelta(minutes=2), promoted=4)
    assert traffic(md) == [(5, 100)]


def test_a_second_deployment_of_the_model_does_not_take_the_baseline_in_turns() -> None:
    plan, _ = step(make(), promoted=7)
    assert plan.promote is None


def test_a_manual_split_pauses_the_canary_and_removing_it_restarts_the_step() -> None:
    _, md = step(make({"canary": CANARY}))
    override = {"canary": CANARY, "traffic": [{"version": 3, "percent": 100}]}
    _, md = step(make(override, status=md.dump()["status"], generation=2), NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=10)
    plan, md = step(make({"canary": CANARY}, status=md.dump()["status"], generation=3), later, metrics={4: GOOD})
    assert traffic(md) == [(3, 90), (4, 10)] and md.status.canary is not None and md.status.canary.since == later
    assert md.status.history[-1].action == "Step" and "resumed" in md.status.history[-1].reason
    _, md = step(md, later + timedelta(seconds=30), metrics={4: GOOD})
    assert traffic(md) == [(3, 90), (4, 10)]  # the restarted step waits for its own window


def test_a_rollback_after_a_mid_canary_edit_stays_rolled_back() -> None:
    _, md = step(make({"canary": CANARY}))
    tweaked = {"canary": {**CANARY, "analysis": {**CANARY["analysis"], "maxP99Ms": 60}}}
    md = make(tweaked, status=md.dump()["status"], generation=2)
    _, md = step(md, NOW + timedelta(minutes=2), metrics={4: VersionMetrics(500, 0.5)})
    assert md.status.canary is not None and (md.status.canary.phase, md.status.canary.generation) == ("RolledBack", 2)
    again, md = step(md, NOW + timedelta(minutes=3))
    assert traffic(md) == [(3, 100)] and not any(e.reason == "CanaryStarted" for e in again.events)
