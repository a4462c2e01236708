"""`helm install charts/lathe` on the real node: the operator runs as a pod under the chart's ServiceAccount.

The operator image (built here with buildah) runs the chart's Deployment in a release
namespace; it talks to the API through the kubernetes Service with its ServiceAccount
token and the chart's ClusterRole, and serves a ModelDeployment with the kubernetes
backend: model server pods that fetch from the S3 server at the node's address. Both
namespaces enforce the restricted Pod Security Standard.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, eventually
from tests.integration.conftest import Kubectl
from tests.integration.registry import registry
from tests.integration.test_model_deployment_local import apply, ready, status
from tests.integration.test_model_server import call
from tests.integration.test_serving_kubernetes import reachable_s3, store_secret  # noqa: F401  (fixture)
from tests.servers.controlplane import ControlPlane
from tests.servers.node import Node, images
from tests.servers.s3 import S3Server
from tests.servers.tools import helm


@pytest.fixture
def release(kubectl: Kubectl, control_plane: ControlPlane, namespace: str, node: Node) -> Iterator[dict[str, str]]:
    system = f"lathe-{secrets.token_hex(3)}"
    kubectl.run("create", "namespace", system)
    for name in (system, namespace):
        kubectl.run("label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted")
    found = {
        "namespace": system,
        "operator": node.load(images("build-images.sh", "operator")["operator"]),
        "serving": node.load(images("build-images.sh", "serving")["serving"]),
    }
    yield found
    subprocess.run(
        [str(helm()), f"--kubeconfig={control_plane.kubeconfig}", "uninstall", "lathe", "-n", system, "--wait"],
        capture_output=True,
        check=False,
        timeout=120,
    )
    kubectl.run("delete", "namespace", system, "--wait=false", check=False)


def install(
    kubectl: Kubectl,
    control_plane: ControlPlane,
    release: dict[str, str],
    namespace: str,
    s3: S3Server,
    values: dict[str, str],
) -> None:
    """`helm install` the chart for ``namespace`` with the release's images, then wait for the operator pod."""
    system = release["namespace"]
    repository, tag = release["operator"].rsplit(":", 1)
    values = {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "watchNamespaces[0]": namespace,
        "serving.backend": "kubernetes",
        "serving.image": release["serving"],
        "store.uri": f"s3://lathe-{namespace}",
        "store.endpoint": s3.endpoint,
        "logFormat": "full",
        **values,
    }
    installed = subprocess.run(
        [
            str(helm()),
            f"--kubeconfig={control_plane.kubeconfig}",
            "install",
            "lathe",
            str(ROOT / "charts/lathe"),
            "-n",
            system,
            "--skip-crds",  # the test session applied them; a cluster's first install brings them
            *[a for k, v in values.items() for a in ("--set-string", f"{k}={v}")],
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr

    def running() -> dict[str, Any]:
        found = kubectl.get("deployment", "lathe", "-n", system)
        assert found["status"].get("availableReplicas") == 1, _operator_state(kubectl, system)
        return found

    eventually(running, timeout=180)


def test_the_chart_installs_an_operator_pod_that_serves_a_model_from_pods(
    kubectl: Kubectl,
    control_plane: ControlPlane,
    namespace: str,
    reachable_s3: S3Server,  # noqa: F811
    release: dict[str, str],
) -> None:
    system = release["namespace"]
    for name in (system, namespace):
        store_secret(kubectl, name, reachable_s3)
    models = registry(reachable_s3, namespace, broken=False)
    install(kubectl, control_plane, release, namespace, reachable_s3, {})
    apply(kubectl, namespace, "web", replicas=1)
    eventually(lambda: ready(kubectl, namespace, "web") == ("True", "Available"), timeout=240)
    cluster_ip = kubectl.get("service", "web", "-n", namespace)["spec"]["clusterIP"]
    code, answer = call(
        f"http://{cluster_ip}:9000", "/api/v1.0/predictions", {"data": {"ndarray": models["rows"][:1].tolist()}}
    )
    assert code == 200 and answer["meta"]["requestPath"]["model"] == "digits-classifier:1", answer
    logs = kubectl.run("logs", "deployment/lathe", "-n", system).stdout
    assert "reconcile_model_deployment" in logs  # the operator in the pod did it
    assert status(kubectl, namespace, "web")["endpoint"].startswith(f"http://web.{namespace}.svc:9000")


def _operator_state(kubectl: Kubectl, system: str) -> str:
    pods = kubectl.run("get", "pods", "-n", system, "-o", "wide").stdout
    events = kubectl.run("get", "events", "-n", system, "--sort-by=.lastTimestamp").stdout[-2000:]
    logs = kubectl.run("logs", "deployment/lathe", "-n", system, "--tail=20", check=False).stdout
    return f"{pods}\n{events}\n{logs}"
