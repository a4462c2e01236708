"""Lathe's demo in a real cluster: `helm install` on a one-node cluster, then the demo's steps in pods.

Run with `make demo-cluster`. Starts a kube-apiserver with a real node (kubelet, containerd,
runc, CNI, kube-proxy), an S3 server and a Prometheus on the node's address, loads the
images built here (operator, jobs, pipelines, serving), installs charts/lathe with Job runs,
the job pipeline backend and the kubernetes serving backend, then: the Dataset's ingest Job,
a TrainingRun trained in a Job pod, online serving from pods, a batch and an edge Job, a
canary promoted on what Prometheus scraped from the model server pods, and a DriftMonitor's
check as a Job. Everything runs in the namespace `demo`, which enforces the restricted Pod
Security Standard. Needs root (the node), like `make test`.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from minio import Minio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hack.demo import ROOT, jsonpath, kubectl, show, wait_for  # noqa: E402
from hack.demo_traffic import Client, post  # noqa: E402
from lathe_pipelines.sample_data import digits  # noqa: E402
from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.node import Node, images, node_address  # noqa: E402
from tests.servers.prometheus import Prometheus  # noqa: E402
from tests.servers.s3 import S3Server  # noqa: E402
from tests.servers.tools import helm  # noqa: E402

SYSTEM = "lathe-system"


def install(plane: ControlPlane, node: Node, s3: S3Server, prometheus: Prometheus) -> None:
    started = time.monotonic()
    built = images("build-images.sh", "operator", "jobs", "pipelines", "serving")
    loaded = {name: node.load(path) for name, path in built.items()}
    print(f"Images built (or found in the cache) and loaded into the node in {time.monotonic() - started:.0f}s:")
    for name, path in built.items():
        print(f"  {loaded[name]}  {path.stat().st_size / 2**20:.0f} MiB")
    repository, tag = loaded["operator"].rsplit(":", 1)
    values = {
        "image.repository": repository,
        "image.tag": tag,
        "image.pullPolicy": "Never",
        "watchNamespaces[0]": "demo",
        "jobsImage": loaded["jobs"],
        "pipelinesImage": loaded["pipelines"],
        "pipelines.backend": "job",
        "serving.backend": "kubernetes",
        "serving.image": loaded["serving"],
        "serving.prometheusUrl": prometheus.url,
        "store.uri": "s3://lathe",
        "store.endpoint": s3.endpoint,
        "logFormat": "full",
    }
    command = [str(helm()), f"--kubeconfig={plane.kubeconfig}", "install", "lathe", str(ROOT / "charts/lathe")]
    command += ["-n", SYSTEM, "--wait", "--timeout=5m"]
    command += [a for k, v in values.items() for a in ("--set-string", f"{k}={v}")]
    print(f"\n$ helm install lathe charts/lathe -n {SYSTEM} " + " ".join(f"--set {k}=..." for k in values))
    subprocess.run(command, check=True, timeout=360)
    show(plane, "get", "pods", "-n", SYSTEM, "-o", "wide")


def prepare(plane: ControlPlane, s3: S3Server) -> None:
    for namespace in (SYSTEM, "demo"):
        kubectl(plane, "create", "namespace", namespace)
        kubectl(plane, "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
        kubectl(plane, "apply", "-n", namespace, "-f", "-", stdin=s3.secret("lathe-store"))
    # the example Dataset's source credentials: opted in; lathe-store (the store's own keys) is not
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=s3.secret("store-creds", {"lathe.dev/credentials": "true"}))
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    client.make_bucket("raw")
    data = digits().to_csv(index=False).encode()
    client.put_object("raw", "digits/digits.csv", io.BytesIO(data), len(data))


def no_gpu(path: str) -> str:
    """An example TrainingRun without its GPU request: this node has no GPU."""
    run = yaml.safe_load((ROOT / path).read_text())
    run["spec"].pop("resources", None)
    return yaml.safe_dump(run)


def endpoint(plane: ControlPlane, name: str) -> str:
    ip = jsonpath(plane, f"service/{name}", "{.spec.clusterIP}")
    return f"http://{ip}:9000/api/v1.0/predictions"


def train_and_serve(plane: ControlPlane) -> None:
    show(plane, "apply", "-n", "demo", "-f", str(ROOT / "examples/01-dataset"))
    wait_for(plane, "Published", timeout=300)
    show(plane, "get", "datasets,jobs", "-n", "demo")
    print("\nThe TrainingRun (examples/02-training-run, without its GPU request) trains in a Job pod:")
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=no_gpu("examples/02-training-run/trainingrun.yaml"))
    wait_for(plane, "Registered", "trainingrun/digits-mlp-1", timeout=600)
    show(plane, "get", "trainingruns", "-n", "demo", "-o", "wide")
    online = yaml.safe_load((ROOT / "examples/03-model-deployment/modeldeployment.yaml").read_text())
    online["spec"].update(replicas=1, resources={"cpu": "500m", "memory": "512Mi"})  # a 2-CPU node
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=yaml.safe_dump(online))
    for example in ("batch.yaml", "edge.yaml"):
        kubectl(plane, "apply", "-n", "demo", "-f", str(ROOT / "examples/03-model-deployment" / example))
    wait_for(plane, "Available", "modeldeployment/digits", timeout=300)
    wait_for(plane, "Scored", "modeldeployment/digits-batch", timeout=300)
    wait_for(plane, "Bundled", "modeldeployment/digits-edge", timeout=300)
    show(plane, "get", "modeldeployments,pods", "-n", "demo", "-o", "wide")
    rows = digits().drop(columns="label").to_numpy(dtype="float32")
    code, answer = post(endpoint(plane, "digits"), {"data": {"ndarray": rows[:2].tolist()}})
    print(f"POST to the Service with 2 rows -> {code}: {json.dumps(answer['meta'])}")


def canary(plane: ControlPlane) -> None:
    print("\nA second TrainingRun, then version 2 as a canary measured by Prometheus scraping the pods:")
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=no_gpu("examples/05-canary/trainingrun.yaml"))
    wait_for(plane, "Registered", "trainingrun/digits-mlp-2", timeout=600)
    frame = digits()
    rows, labels = frame.drop(columns="label").to_numpy(dtype="float32"), frame["label"].astype(str).tolist()
    client = Client(endpoint(plane, "digits"), rows, labels)
    client.start()
    md = yaml.safe_load((ROOT / "examples/05-canary/modeldeployment.yaml").read_text())
    md["spec"].update(replicas=1, resources={"cpu": "500m", "memory": "512Mi"}, logging={"sampleRate": 1.0})
    try:
        kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=yaml.safe_dump(md))
        wait_for(plane, "CanaryPromoted", "modeldeployment/digits", timeout=420)
    finally:
        print(f"Live traffic during the rollout: {client.stop()}")
    for entry in json.loads(jsonpath(plane, "modeldeployment/digits", "{.status.history}")):
        print(
            f"  {entry['time']}  {entry['action']:<8} version {entry['version']} -> {entry['percent']}%  {entry.get('reason', '')}"
        )


def drift(plane: ControlPlane) -> None:
    print("\nA DriftMonitor (examples/04-drift-monitor, checked every 20s) over the requests the pods logged:")
    frame = digits()
    rows, labels = frame.drop(columns="label").to_numpy(dtype="float32"), frame["label"].astype(str).tolist()
    client = Client(endpoint(plane, "digits"), rows[-600:], labels[-600:], pause=0)
    for i in range(600):
        client.once(i)
    print(f"600 more requests, with their truth sent back as feedback: {client.stop()}")
    monitor: dict[str, Any] = yaml.safe_load((ROOT / "examples/04-drift-monitor/driftmonitor.yaml").read_text())
    monitor["spec"].update(interval="20s", window={"duration": "1h", "minSamples": 100})
    kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=yaml.safe_dump(monitor))
    deadline = time.monotonic() + 300
    while jsonpath(plane, "driftmonitor/digits", "{.status.verdict}") in ("", "InsufficientData"):
        if time.monotonic() > deadline:
            raise SystemExit("the DriftMonitor did not report a verdict within 300s")
        time.sleep(2)
    show(plane, "get", "driftmonitors,jobs", "-n", "demo", "-o", "wide")


def main() -> int:
    started = time.monotonic()
    plane = ControlPlane().start()
    node = s3 = prometheus = None
    try:
        node = Node(plane).start()
        s3 = S3Server(host=node_address()).start()
        prometheus = Prometheus(host=node_address(), pods=plane.kubeconfig).start()
        print(f"Started a one-node cluster, S3 and Prometheus in {time.monotonic() - started:.0f}s")
        kubectl(plane, "apply", "--server-side", "-f", str(ROOT / "charts/lathe/crds"))
        prepare(plane, s3)
        install(plane, node, s3, prometheus)
        train_and_serve(plane)
        canary(plane)
        drift(plane)
        print(f"\nThe demo ran in the cluster in {time.monotonic() - started:.0f}s.")
        return 0
    finally:
        for server in (prometheus, s3, node):
            if server is not None:
                server.stop()
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
