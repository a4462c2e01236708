"""The one-node cluster: a pod scheduled onto the real node runs, logs, reaches another pod, and is deleted.

The first test of issue 12's cluster path: everything later (Jobs, the operator's pod,
model server pods) rests on this. The node's start-up time is in benchmarks/startup.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
import yaml

from lathe_pipelines.sample_data import digits
from tests.conftest import eventually
from tests.integration.conftest import Kubectl
from tests.integration.registry import trained
from tests.integration.test_model_server import call
from tests.servers.node import Node, images, reference


@pytest.fixture
def restricted(kubectl: Kubectl, namespace: str) -> str:
    """The test namespace under the restricted Pod Security Standard: every pod here must pass it."""
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    return namespace


def base_image() -> str:
    return reference(images()["base"])


def pod(name: str, command: list[str], **spec: Any) -> str:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": base_image(),
                    "imagePullPolicy": "Never",  # imported into containerd: there is no registry
                    "command": command,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
            **spec,
        },
    }
    return yaml.safe_dump(manifest)


def phase(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get("pod", name, "-n", namespace).get("status") or {})


def test_the_node_is_ready_and_shows_its_version(kubectl: Kubectl, node: Node) -> None:
    def ready() -> dict[str, Any]:
        found = kubectl.get("node", node.name)
        conditions = {c["type"]: c["status"] for c in found["status"]["conditions"]}
        assert conditions.get("Ready") == "True", found["status"]["conditions"]
        return found

    found = eventually(ready, timeout=120)
    assert found["status"]["nodeInfo"]["kubeletVersion"] == "v1.34.4"
    assert found["status"]["addresses"][0] == {"type": "InternalIP", "address": node.address}


def test_a_pod_runs_logs_and_reaches_another_pod_and_a_service(kubectl: Kubectl, restricted: str, node: Node) -> None:
    namespace = restricted
    loose = yaml.safe_load(pod("loose", ["true"]))
    del loose["spec"]["containers"][0]["securityContext"]
    refused = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(loose), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr, refused.stderr
    serve = ["python3.11", "-c", _SERVER]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=pod("server", serve))
    server = eventually(lambda: _running(kubectl, namespace, "server"), timeout=120)
    address = server["podIP"]
    assert address.startswith("198.18.0."), server
    fetch = [
        "python3.11",
        "-c",
        f"import urllib.request; print(urllib.request.urlopen('http://{address}:8080').read().decode())",
    ]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=pod("client", fetch))
    eventually(lambda: phase(kubectl, namespace, "client")["phase"] == "Succeeded", timeout=120)
    logs = kubectl.run("logs", "client", "-n", namespace).stdout
    assert "hello from the server pod" in logs
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "server"},
        "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(service))
    cluster_ip = kubectl.get("service", "server", "-n", namespace)["spec"]["clusterIP"]
    assert cluster_ip.startswith("198.19.0."), cluster_ip
    through = [fetch[0], fetch[1], fetch[2].replace(f"{address}:8080", f"{cluster_ip}:80")]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=pod("through-service", through))
    eventually(lambda: phase(kubectl, namespace, "through-service")["phase"] == "Succeeded", timeout=120)
    assert "hello from the server pod" in kubectl.run("logs", "through-service", "-n", namespace).stdout
    kubectl.run("delete", "pod", "server", "-n", namespace, "--wait=true", "--timeout=60s")
    named = 'labels."io.kubernetes.pod.name"==server'
    eventually(lambda: node.ctr("containers", "ls", "-q", named).split() == [], timeout=60)  # gone from the node


_SERVER = """
import http.server
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from the server pod")
http.server.HTTPServer(("", 8080), Hello).serve_forever()
"""


def _running(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    found = phase(kubectl, namespace, name)
    assert found.get("phase") == "Running" and found.get("podIP"), found
    return found


def test_the_serving_image_serves_a_registered_model_from_a_pod(kubectl: Kubectl, restricted: str, node: Node) -> None:
    """The serving image's own entry point under the restricted standard: what it imports is in it."""
    namespace = restricted
    image = node.load(images("build-images.sh", "serving")["serving"])
    onnx_bytes, features, classes = trained()
    card = {
        "name": "digits-classifier",
        "version": 1,
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "columns": {"features": features, "classes": classes, "target": "label"},
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "model-1"},
        "data": {"model.json": json.dumps(card)},
        "binaryData": {"model.onnx": base64.b64encode(onnx_bytes).decode()},
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=json.dumps(config_map))
    manifest = yaml.safe_load(pod("model", []))
    container = manifest["spec"]["containers"][0]
    del container["command"]  # the image's ENTRYPOINT and CMD: python -m lathe_serving --model-dir /mnt/models
    container.update(image=image, volumeMounts=[{"name": "model", "mountPath": "/mnt/models"}])
    container["securityContext"]["runAsUser"] = 8888
    container["readinessProbe"] = {"httpGet": {"path": "/health/ping", "port": 9000}, "periodSeconds": 1}
    manifest["spec"]["volumes"] = [{"name": "model", "configMap": {"name": "model-1"}}]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))

    def ready() -> dict[str, Any]:
        found = _running(kubectl, namespace, "model")
        assert all(c["ready"] for c in found["containerStatuses"]), found["containerStatuses"]
        return found

    address = eventually(ready, timeout=180)["podIP"]
    rows = digits().drop(columns="label")[features].to_numpy(dtype="float32")[:3]
    code, answer = call(f"http://{address}:9000", "/api/v1.0/predictions", {"data": {"ndarray": rows.tolist()}})
    assert code == 200 and answer["data"]["names"] == classes, answer
    assert answer["meta"]["requestPath"]["model"] == "digits-classifier:1"
    code, refused = call(f"http://{address}:9000", "/api/v1.0/predictions", {"data": {"ndarray": [[1, 2]]}})
    assert code == 400 and refused["status"]["reason"] == "InvalidShape", refused
