"""The kubernetes serving backend's rendering and observation, with plain values."""

from __future__ import annotations

import json
from typing import Any

from lathe_core.settings import StoreSettings
from lathe_operator.api.v1alpha1 import ModelDeployment
from lathe_operator.reconcile import serving_kubernetes as k8s

STORE = StoreSettings(uri="s3://lathe", endpoint="s3.store:9000", access_key="AK", secret_key="SK")


def make(**spec: Any) -> ModelDeployment:
    body = {"model": {"name": "clf", "version": 1}, "logging": {"sampleRate": 0.5}, **spec}
    meta = {"name": "web", "namespace": "ml", "uid": "u1", "generation": 3}
    return ModelDeployment.model_validate({"kind": "ModelDeployment", "metadata": meta, "spec": body})


def render(md: ModelDeployment, traffic: list[tuple[int, int]], shadow: int | None = None) -> list[dict[str, Any]]:
    return k8s.manifests(md, traffic, shadow, image="lathe.local/serving:1", store=STORE, secret="lathe-store")


def test_the_split_is_a_config_map_the_pods_fetch_and_roll_on() -> None:
    config_map, deployment, service = render(make(replicas=2), [(1, 90), (2, 10)], shadow=3)
    settings = json.loads(config_map["data"]["deployment.json"])
    assert settings["models"] == {"1": "/models/1", "2": "/models/2", "3": "/models/3"}
    assert settings["traffic"] == {"1": 90, "2": 10} and settings["shadow"] == 3
    assert settings["logging"] == {"sampleRate": 0.5}
    pod = deployment["spec"]["template"]
    fetch, server = pod["spec"]["initContainers"][0], pod["spec"]["containers"][0]
    assert fetch["args"] == ["--namespace", "ml", "--model", "clf", "--versions", "1,2,3", "--to", "/models"]
    assert deployment["spec"]["replicas"] == 2 and service["spec"]["ports"][0]["port"] == 9000
    keys = {e["name"]: e for e in server["env"]}
    assert keys["LATHE_STORE_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "lathe-store", "key": "accessKey"}
    assert "SK" not in json.dumps(deployment)  # credentials come from the Secret, never the manifest
    assert pod["spec"]["securityContext"]["runAsNonRoot"] and server["securityContext"]["readOnlyRootFilesystem"]
    other = render(make(replicas=2), [(2, 100)])[1]["spec"]["template"]["metadata"]["annotations"]
    assert other["lathe.dev/serving-config"] != pod["metadata"]["annotations"]["lathe.dev/serving-config"]


def status(wanted: int, updated: int, available: int, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": wanted},
        "status": {
            "observedGeneration": observed,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "replicas": updated,
        },
    }


def test_available_only_when_every_wanted_pod_runs_the_current_template() -> None:
    md = make()
    assert k8s.observe(None, md)[0] == "Absent"
    assert k8s.observe(status(2, 2, 2), md)[0] == "Available"
    assert k8s.observe(status(2, 1, 2), md)[0] == "Creating"
    assert k8s.observe(status(2, 2, 2, observed=1), md)[0] == "Creating"
    stuck = status(1, 1, 0)
    stuck["status"]["conditions"] = [{"type": "Progressing", "status": "False", "message": "deadline exceeded"}]
    state, message, endpoint = k8s.observe(stuck, md)
    assert (
        state == "Failed"
        and "deadline exceeded" in message
        and endpoint == "http://web.ml.svc:9000/api/v1.0/predictions"
    )


def test_a_pod_that_cannot_run_fails_the_deployment_with_its_containers_words() -> None:
    pod = {
        "metadata": {"name": "web-abc"},
        "status": {
            "initContainerStatuses": [
                {
                    "name": "fetch",
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                    "lastState": {"terminated": {"message": "loading\nclf version 3: model.onnx does not match\n"}},
                }
            ]
        },
    }
    state, message, _ = k8s.observe(status(1, 1, 0), make(), [pod])
    assert state == "Failed"
    assert (
        message
        == "Deployment web: pod web-abc: container fetch: CrashLoopBackOff: loading | clf version 3: model.onnx does not match"
    )
    starting = {
        "metadata": {"name": "web-abc"},
        "status": {"containerStatuses": [{"name": "server", "state": {"waiting": {"reason": "PodInitializing"}}}]},
    }
    assert k8s.observe(status(1, 1, 0), make(), [starting])[0] == "Creating"


def test_autoscaling_adds_an_hpa_on_in_flight_requests_and_leaves_replicas_to_it() -> None:
    md = make(autoscaling={"minReplicas": 2, "maxReplicas": 6, "targetConcurrency": 4})
    config_map, deployment, service, hpa = render(md, [(1, 100)])
    assert "replicas" not in deployment["spec"]  # the HPA's to set; a re-apply keeps the live count
    assert hpa["kind"] == "HorizontalPodAutoscaler" and hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    [metric] = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "lathe_model_in_flight_requests"
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "4"}
    assert hpa["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"


def test_restarted_servers_are_counted_with_how_the_last_one_ended() -> None:
    def pod(name: str, restarts: int, ended: dict[str, Any] | None) -> dict[str, Any]:
        container = {"name": "server", "restartCount": restarts, "lastState": {"terminated": ended} if ended else {}}
        return {"metadata": {"name": name}, "status": {"containerStatuses": [container]}}

    assert k8s.restarts([pod("web-a", 0, None), pod("web-b", 0, None)]) == ""
    killed = {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-26T15:40:00Z"}
    older = {"reason": "Error", "exitCode": 1, "finishedAt": "2026-11-26T15:00:00Z"}
    assert k8s.restarts([pod("web-a", 1, older), pod("web-b", 2, killed)]) == (
        "servers restarted 3 times, last web-b: OOMKilled (exit code 137) at 2026-11-26T15:40:00Z"
    )
