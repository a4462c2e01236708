"""The one-node cluster: a pod scheduled onto the real node runs, logs, reaches another pod, and is deleted.

The first test of issue 12's cluster path: everything later (Jobs, the operator's pod,
model server pods) rests on this. The node's start-up time is in benchmarks/startup.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import eventually
from tests.integration.conftest import Kubectl
from tests.servers.controlplane import ControlPlane
from tests.servers.node import Node, images


@pytest.fixture(scope="module")
def node(control_plane: ControlPlane) -> Iterator[Node]:
    started = Node(control_plane).start()
    yield started
    started.stop()


def base_image() -> str:
    archive = images()["base"]
    return "lathe.local/base:" + archive.stem.removeprefix("base-")


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


def test_a_pod_runs_logs_and_reaches_another_pod(kubectl: Kubectl, namespace: str, node: Node) -> None:
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
