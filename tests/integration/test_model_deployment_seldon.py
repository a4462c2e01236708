"""ModelDeployment in cluster mode: the SeldonDeployment the operator renders, and conditions that follow Seldon's status.

Seldon's controller cannot run here (no pods); the test registers the SeldonDeployment
kind and plays the controller by writing ``status.state`` as Seldon does.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.integration.registry import MODEL, registry
from tests.servers.controlplane import ControlPlane
from tests.servers.s3 import S3Server

CRD = Path(__file__).parent / "crds/seldondeployments.yaml"


@pytest.fixture(scope="module")
def seldon_crd(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(CRD))
    kubectl.run(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/seldondeployments.machinelearning.seldon.io"
    )


@pytest.fixture
def cluster_operator(
    control_plane: ControlPlane, s3: S3Server, namespace: str, tmp_path: Path, seldon_crd: None
) -> Iterator[OperatorProcess]:
    env = {
        "LATHE_EXECUTOR": "job",
        "LATHE_SERVING": "seldon",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_SERVING_IMAGE": "ghcr.io/lathe-dev/lathe-serving:test",
        "LATHE_REQUEST_LOGGER_URL": "http://lathe-request-logger.lathe-system.svc/",
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    yield process
    process.kill(signal.SIGTERM)


def deployment(name: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "lathe.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": {"model": {"name": MODEL, "version": 1}, **spec},
        }
    )


def ready(kubectl: Kubectl, namespace: str, name: str) -> tuple[str, str]:
    status = kubectl.get("modeldeployment", name, "-n", namespace).get("status") or {}
    found = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {"status": "", "reason": ""})
    return found["status"], found["reason"]


def play_seldon(kubectl: Kubectl, namespace: str, name: str, state: str, description: str = "") -> None:
    status = {
        "state": state,
        "description": description,
        "address": {"url": f"http://{name}-default.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"},
    }
    kubectl.run(
        "patch",
        "seldondeployment",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def test_renders_a_seldon_deployment_and_follows_its_state(
    kubectl: Kubectl, namespace: str, s3: S3Server, cluster_operator: OperatorProcess
) -> None:
    registry(s3, namespace)
    spec = {
        "canary": {"version": 2, "steps": [20, 100]},
        "shadow": {"version": 3},
        "logging": {"sampleRate": 0.25},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 6},
        "resources": {"cpu": "1", "memory": "512Mi"},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=deployment("digits", **spec))
    sd = eventually(
        lambda: kubectl.run("get", "sdep", "digits", "-n", namespace, "-o", "json", check=False).stdout, timeout=60
    )
    sd = json.loads(sd)
    md = kubectl.get("modeldeployment", "digits", "-n", namespace)
    owner = sd["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("ModelDeployment", md["metadata"]["uid"], True)
    predictors = {p["name"]: p for p in sd["spec"]["predictors"]}
    assert {n: p["traffic"] for n, p in predictors.items()} == {"v1": 80, "v2": 20, "v3": 0}
    assert predictors["v3"]["shadow"] is True and "shadow" not in predictors["v1"]
    graph = predictors["v2"]["graph"]
    assert graph["modelUri"] == f"s3://lathe-{namespace}/models/{namespace}/{MODEL}/2/"
    assert graph["logger"]["url"] == "http://lathe-request-logger.lathe-system.svc/"
    assert graph["envSecretRefName"] == "lathe-seldon-storage" and graph["implementation"] == "LATHE_SERVER"
    assert "--sample-rate" in predictors["v1"]["componentSpecs"][0]["spec"]["containers"][0]["args"]
    component = predictors["v1"]["componentSpecs"][0]
    assert component["hpaSpec"]["minReplicas"] == 2 and component["hpaSpec"]["maxReplicas"] == 6
    container = component["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/lathe-dev/lathe-serving:test"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    assert container["securityContext"]["runAsNonRoot"] is True and container["livenessProbe"]["httpGet"]
    assert ready(kubectl, namespace, "digits") == ("False", "Creating")

    play_seldon(kubectl, namespace, "digits", "Available")
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "CanaryProgressing"), timeout=30)
    status = kubectl.get("modeldeployment", "digits", "-n", namespace)["status"]
    assert status["endpoint"].endswith("/api/v1.0/predictions") and status["serving"] == "1:80,2:20,3:shadow"
    table = kubectl.run("get", "modeldeployments", "-n", namespace, "-o", "wide").stdout
    assert "1:80,2:20,3:shadow" in table and "CanaryProgressing" in table

    play_seldon(kubectl, namespace, "digits", "Failed", "container model: CrashLoopBackOff")
    eventually(lambda: ready(kubectl, namespace, "digits") == ("False", "ServingFailed"), timeout=30)
    message = kubectl.get("modeldeployment", "digits", "-n", namespace)["status"]["conditions"][0]["message"]
    assert "CrashLoopBackOff" in message

    # A manual split wins: the operator patches the predictors' traffic.
    patch = {"spec": {"traffic": [{"version": 1, "percent": 100}]}}
    kubectl.run("patch", "modeldeployment", "digits", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    eventually(
        lambda: (
            [p["traffic"] for p in kubectl.get("sdep", "digits", "-n", namespace)["spec"]["predictors"]] == [100, 0]
        ),
        timeout=30,
    )
    play_seldon(kubectl, namespace, "digits", "Available")
    eventually(lambda: ready(kubectl, namespace, "digits") == ("True", "TrafficOverride"), timeout=30)

    # Fields dropped from the rendering leave the SeldonDeployment too (its spec is replaced, not merged).
    kubectl.run(
        "patch",
        "modeldeployment",
        "digits",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/logging"}, {"op": "remove", "path": "/spec/shadow"}]',
    )

    def unlogged() -> bool:
        predictors = kubectl.get("sdep", "digits", "-n", namespace)["spec"]["predictors"]
        args = predictors[0]["componentSpecs"][0]["spec"]["containers"][0]["args"]
        return (
            [p["name"] for p in predictors] == ["v1"]
            and "--sample-rate" not in args
            and "logger" not in predictors[0]["graph"]
        )

    eventually(unlogged, timeout=30)

    # The garbage collector removes the SeldonDeployment with its owner.
    kubectl.run("delete", "modeldeployment", "digits", "-n", namespace, "--wait=true", "--timeout=60s")
    eventually(lambda: kubectl.run("get", "sdep", "digits", "-n", namespace, check=False).returncode != 0, timeout=60)


def test_unknown_model_version_is_model_not_found_and_nothing_is_rendered(
    kubectl: Kubectl, namespace: str, s3: S3Server, cluster_operator: OperatorProcess
) -> None:
    registry(s3, namespace, broken=False)
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=deployment("ghost", model={"name": MODEL, "version": 9}))
    eventually(lambda: ready(kubectl, namespace, "ghost") == ("False", "ModelNotFound"), timeout=60)
    assert kubectl.run("get", "sdep", "ghost", "-n", namespace, check=False).returncode != 0
    events = kubectl.run("get", "events", "-n", namespace, "--field-selector", "reason=ModelNotFound").stdout
    assert "ghost" in events or "ModelNotFound" in events
