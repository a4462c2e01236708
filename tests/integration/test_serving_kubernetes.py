"""Online serving without Seldon on the real node: a ModelDeployment becomes a Deployment of Lathe's server.

The operator (``LATHE_SERVING=kubernetes``) renders a ConfigMap, a Deployment and a Service;
the pod's init container fetches the model versions from the S3 server (reached at the
node's address, as a cluster's store would be), the server serves them, and a canary's
promotion rolls the pods to the new split. Requests go to the Service's ClusterIP through
kube-proxy; the namespace enforces the restricted Pod Security Standard.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lathe_core import layout
from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.integration.registry import MODEL, registry
from tests.integration.test_model_deployment_local import apply, ready, status
from tests.integration.test_model_server import call
from tests.servers.controlplane import ControlPlane
from tests.servers.node import Node, images, node_address
from tests.servers.s3 import S3Server


@pytest.fixture(scope="module")
def reachable_s3() -> Iterator[S3Server]:
    """An S3 server on the node's address: pods cannot reach the host's loopback."""
    server = S3Server(host=node_address()).start()
    yield server
    server.stop()


@pytest.fixture
def operator(
    control_plane: ControlPlane, reachable_s3: S3Server, node: Node, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    image = node.load(images("build-images.sh", "serving")["serving"])
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_SERVING": "kubernetes",
        "LATHE_SERVING_IMAGE": image,
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": reachable_s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": reachable_s3.access_key,
        "LATHE_STORE_SECRET_KEY": reachable_s3.secret_key,
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    yield process
    process.kill(signal.SIGTERM)


def store_secret(kubectl: Kubectl, namespace: str, s3: S3Server) -> None:
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=s3.secret("lathe-store"))


def test_a_model_deployment_serves_from_pods_and_a_promotion_rolls_them(
    kubectl: Kubectl, namespace: str, reachable_s3: S3Server, operator: OperatorProcess
) -> None:
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    models = registry(reachable_s3, namespace, broken=False)
    store_secret(kubectl, namespace, reachable_s3)
    apply(kubectl, namespace, "web", replicas=1)

    def reason(wanted: str) -> bool:
        assert ready(kubectl, namespace, "web") == ("True", wanted), status(kubectl, namespace, "web")
        return True

    eventually(lambda: reason("Available"), timeout=240)
    assert status(kubectl, namespace, "web")["endpoint"] == f"http://web.{namespace}.svc:9000/api/v1.0/predictions"
    cluster_ip = kubectl.get("service", "web", "-n", namespace)["spec"]["clusterIP"]
    rows = models["rows"][:2].tolist()

    def answered_by() -> str:
        code, answer = call(f"http://{cluster_ip}:9000", "/api/v1.0/predictions", {"data": {"ndarray": rows}})
        assert code == 200, answer
        return str(answer["meta"]["requestPath"]["model"])

    assert eventually(answered_by, timeout=60) == "digits-classifier:1"
    made = kubectl.get("deployment", "web", "-n", namespace)
    assert made["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    template = made["spec"]["template"]["spec"]
    assert template["initContainers"][0]["args"][-3:] == ["1", "--to", "/models"]
    assert all(e.get("valueFrom") for e in template["initContainers"][0]["env"] if "KEY" in e["name"])

    apply(kubectl, namespace, "web", replicas=1, canary={"version": 2, "steps": [100]})
    eventually(lambda: reason("CanaryPromoted"), timeout=240)

    def rolled() -> str:
        found = answered_by()
        assert found == "digits-classifier:2", found
        return found

    eventually(rolled, timeout=240)  # the new split is a new ConfigMap: the pods roll to it
    eventually(lambda: status(kubectl, namespace, "web")["serving"] == "2:100", timeout=120)
    config = kubectl.get("configmap", "web-serving", "-n", namespace)["data"]["deployment.json"]
    assert '"traffic": {"2": 100}' in config

    def fetched() -> str:  # the old pod drains for a few seconds after the roll: ask until it is gone
        logs = kubectl.run("logs", "deployment/web", "-c", "fetch", "-n", namespace).stdout
        assert "fetched digits-classifier version 2" in logs, logs
        return logs

    eventually(fetched, timeout=60)


def test_a_model_file_that_fails_its_checksum_fails_the_deployment_with_the_reason(
    kubectl: Kubectl, namespace: str, reachable_s3: S3Server, operator: OperatorProcess
) -> None:
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    models = registry(reachable_s3, namespace, broken=False)
    models["store"].put(layout.model_file(namespace, MODEL, 2, layout.ONNX), b"not the registered model")
    store_secret(kubectl, namespace, reachable_s3)
    apply(kubectl, namespace, "tampered", replicas=1, model={"name": MODEL, "version": 2})

    def refused() -> dict[str, Any]:
        found = status(kubectl, namespace, "tampered")
        ready_ = next(c for c in found["conditions"] if c["type"] == "Ready")
        assert ready_["reason"] == "ServingFailed", ready_
        return ready_

    condition = eventually(refused, timeout=180)
    assert "container fetch" in condition["message"] and "does not match the sha256" in condition["message"]
    degraded = next(c for c in status(kubectl, namespace, "tampered")["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True"


def test_autoscaling_renders_an_hpa_and_a_new_split_keeps_the_replicas_it_set(
    kubectl: Kubectl, namespace: str, reachable_s3: S3Server, operator: OperatorProcess
) -> None:
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    registry(reachable_s3, namespace, broken=False)
    store_secret(kubectl, namespace, reachable_s3)
    scaling = {"minReplicas": 1, "maxReplicas": 3, "targetConcurrency": 4}
    apply(kubectl, namespace, "scaled", autoscaling=scaling)
    eventually(lambda: ready(kubectl, namespace, "scaled") == ("True", "Available"), timeout=240)
    hpa = kubectl.get("hpa", "scaled", "-n", namespace)
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "lathe_model_in_flight_requests"
    # The HPA's decision (no custom metrics API here: the test makes it), then a new split.
    kubectl.run("scale", "deployment", "scaled", "-n", namespace, "--replicas=2")
    apply(kubectl, namespace, "scaled", autoscaling=scaling, canary={"version": 2, "steps": [100]})
    eventually(lambda: ready(kubectl, namespace, "scaled") == ("True", "CanaryPromoted"), timeout=240)
    rolled = eventually(
        lambda: (d := kubectl.get("deployment", "scaled", "-n", namespace))["status"].get("updatedReplicas") == 2 and d,
        timeout=240,
    )
    assert rolled["spec"]["replicas"] == 2  # the re-applied Deployment kept what the autoscaler set
