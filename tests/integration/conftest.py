"""Session fixtures: the real servers, started once per run and stopped by PID.

Every test gets its own namespace with a random suffix. The kube client is built from
the control plane's own kubeconfig, and any other context is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.conftest import ROOT
from tests.servers.controlplane import ControlPlane
from tests.servers.node import Node
from tests.servers.process import node_address
from tests.servers.prometheus import Prometheus
from tests.servers.s3 import S3Server
from tests.servers.seaweedfs import SeaweedServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane().start()
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)  # subprocesses (kubectl, the operator) use it too
    try:
        Kubectl(plane).run("apply", "--server-side", "-f", str(ROOT / "charts/lathe/crds"))
        Kubectl(plane).run(
            "wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=lathe"
        )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api(control_plane: ControlPlane) -> client.ApiClient:
    api_client = config.new_client_from_config(str(control_plane.kubeconfig))
    host = api_client.configuration.host
    if host != control_plane.server:  # never touch a cluster that is not ours
        raise RuntimeError(f"refusing kube context pointing at {host}")
    return api_client


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedServer]:
    """A store that enforces per-identity policies, on the node's address so that pods reach it too."""
    server = SeaweedServer(host=node_address()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    server = Prometheus().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def node(control_plane: ControlPlane) -> Iterator[Node]:
    """The real node (kubelet, containerd): started by the first test that asks, shared by the rest."""
    started = Node(control_plane).start()
    yield started
    started.stop()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"test-{secrets.token_hex(3)}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    for _ in range(100):  # pods need the namespace's default ServiceAccount, which a controller creates
        if any(a.metadata.name == "default" for a in core.list_namespaced_service_account(name).items):
            break
        time.sleep(0.1)
    yield name
    core.delete_namespace(name)


class Kubectl:
    """The real kubectl against the test control plane."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.plane.kubectl), f"--kubeconfig={self.plane.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def get(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.run("get", "-o", "json", *args).stdout))


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return Kubectl(control_plane)


class OperatorProcess:
    """``python -m lathe_operator operator`` as a subprocess, as it runs in a pod."""

    def __init__(
        self,
        plane: ControlPlane,
        namespace: str,
        log: Path,
        metrics_port: int = 0,
        extra_env: dict[str, str] | None = None,
        liveness: str = "",
        verbose: bool = False,
        also: tuple[str, ...] = (),
    ) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(plane.kubeconfig),
            "LATHE_METRICS_PORT": str(metrics_port),
            "PYTHONUNBUFFERED": "1",
            "LATHE_STORE_URI": f"file://{log.parent / 'store'}",
            **(extra_env or {}),
        }
        self.log = log
        self._file = open(log, "ab")  # noqa: SIM115  (closed in kill)
        self.popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lathe_operator",
                "operator",
                "-n",
                namespace,
                *(arg for other in also for arg in ("-n", other)),
                "--liveness",
                liveness,
                "--log-format",
                "full",
                *(["--verbose"] if verbose else []),
            ],
            stdout=self._file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )

    def kill(self, sig: int = 9) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(30)
        self._file.close()


def stop_local_servers(folder: Path) -> None:
    """Stop the local model servers under an operator's LATHE_LOCAL_DIR: they outlive the operator by design."""
    for server in folder.glob("*/*/server.json"):
        pid = json.loads(server.read_text())["pid"]  # None: it died, and its death was recorded
        try:
            if pid:
                os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
