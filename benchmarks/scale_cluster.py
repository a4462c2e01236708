"""The cluster side of ``operator_scale.py``: the test control plane, a namespace per size, the operator process.

Each is made as tests/integration/conftest.py makes it (the ``control_plane``, ``api`` and
``namespace`` fixtures, ``OperatorProcess``), with the operator set up as the chart deploys
it: ingest runs as Jobs, TrainingRuns on the KFP backend (here the fake KFP API).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

from benchmarks.scale_objects import GROUP, VERSION, credentials_secret, manifests
from tests.conftest import ROOT
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.servers.controlplane import ControlPlane
from tests.servers.kfp_fake import FakeKfp
from tests.servers.process import free_port


def start_plane() -> tuple[ControlPlane, client.ApiClient]:
    """The control plane with Lathe's CRDs, as the control_plane and api fixtures make it."""
    plane = ControlPlane().start()
    kubectl = Kubectl(plane)
    kubectl.run("apply", "--server-side", "-f", str(ROOT / "charts/lathe/crds"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=lathe")
    api = config.new_client_from_config(str(plane.kubeconfig))
    if api.configuration.host != plane.server:  # never touch a cluster that is not ours
        raise RuntimeError(f"refusing kube context pointing at {api.configuration.host}")
    api.configuration.connection_pool_maxsize = 16
    return plane, api


def make_namespace(api: client.ApiClient, n: int) -> str:
    """A fresh namespace with the examples' credentials Secret in it."""
    name = f"scale-{n}-{os.getpid() % 10000}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    for _ in range(100):  # pods need the default ServiceAccount, which a controller creates
        if any(a.metadata.name == "default" for a in core.list_namespaced_service_account(name).items):
            break
        time.sleep(0.1)
    core.create_namespaced_secret(name, credentials_secret())
    return name


def drop_namespace(api: client.ApiClient, name: str, timeout: float = 300) -> None:
    """Delete a size's namespace and wait until it is gone, so the next size starts on an idle cluster."""
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    for plural in ("datasets", "trainingruns"):  # the operator has stopped: nobody removes its finalizers
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, name, plural)["items"]:
            unfinalized = {"metadata": {"finalizers": None}}
            custom.patch_namespaced_custom_object(GROUP, VERSION, name, plural, item["metadata"]["name"], unfinalized)
    core.delete_namespace(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except client.ApiException as error:
            if error.status == 404:
                return
            raise
        time.sleep(1)


def start_operator(plane: ControlPlane, namespace: str, work: Path, kfp: FakeKfp) -> tuple[OperatorProcess, int]:
    """``python -m lathe_operator operator -n <namespace>``, once its startup handlers have run; and its metrics port."""
    port = free_port()
    env = {
        "LATHE_EXECUTOR": "job",
        "LATHE_PIPELINE_BACKEND": "kfp",
        "MALLOC_ARENA_MAX": "2",
        "LATHE_KFP_HOST": kfp.url,
        "LATHE_KFP_UI_URL": "https://kubeflow.example.com/pipeline",
    }
    operator = OperatorProcess(plane, namespace, work / "operator.log", metrics_port=port, extra_env=env)
    deadline = time.monotonic() + 60
    while "Started metrics endpoint" not in operator.log.read_text(errors="replace"):
        if operator.popen.poll() is not None or time.monotonic() > deadline:
            operator.kill()
            raise RuntimeError(f"the operator did not start:\n{operator.log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)
    time.sleep(3)  # its watches start after the startup handlers
    return operator, port


def stop_operator(operator: OperatorProcess) -> float | None:
    """SIGTERM, as Kubernetes stops a pod, then SIGKILL once OperatorProcess has waited 30 s for it (a pod's
    default grace period). How many seconds it took to exit; None when it had to be killed."""
    started = time.monotonic()
    try:
        operator.kill(signal.SIGTERM)
    except subprocess.TimeoutExpired:
        operator.kill(signal.SIGKILL)
        return None
    return time.monotonic() - started


def create_all(api: client.ApiClient, namespace: str, n: int) -> None:
    custom = client.CustomObjectsApi(api)

    def create(item: tuple[str, dict]) -> None:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, item[0], item[1])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(create, manifests(n)))


def metrics(port: int) -> str:
    """The operator's Prometheus metrics (lathe_reconcile_*), as text."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            return str(response.read().decode())
    except OSError as error:
        return f"# unreachable: {error}"
