"""How long the real test servers take to start once built, against the 30 s budget.

    make tools && $(hack/venv.sh)/bin/python benchmarks/startup.py

Starts etcd + kube-apiserver + kube-controller-manager, S3Proxy and Prometheus the way
the test fixtures do, first one after another, then all at once, and prints seconds and
the ratio to the budget. Then the one-node cluster: a fresh control plane (the baseline),
the node (containerd with the node images imported, kubelet, kube-scheduler) until it is
Ready, and a first pod on the base image until it has run, as ratios to that control
plane. The images are built beforehand (hack/node-images.sh, as `make tools` does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.node import Node, images  # noqa: E402
from tests.servers.prometheus import Prometheus  # noqa: E402
from tests.servers.s3 import S3Server  # noqa: E402

BUDGET = 30.0


def timed(factory):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    server = factory().start()
    return server, time.monotonic() - started


def main() -> None:
    servers = []
    total = 0.0
    print(f"{'server':<28}{'seconds':>9}")
    for name, factory in (
        ("control plane (etcd+apiserver)", ControlPlane),
        ("S3Proxy", S3Server),
        ("Prometheus", Prometheus),
    ):
        server, seconds = timed(factory)
        servers.append(server)
        total += seconds
        print(f"{name:<28}{seconds:>9.2f}")
    for server in servers:
        server.stop()
    print(f"{'one after another':<28}{total:>9.2f}   {total / BUDGET:.2f}x of the {BUDGET:.0f} s budget")
    started = time.monotonic()
    with ThreadPoolExecutor(3) as pool:
        running = [f.result()[0] for f in [pool.submit(timed, k) for k in (ControlPlane, S3Server, Prometheus)]]
    together = time.monotonic() - started
    for server in running:
        server.stop()
    print(f"{'all at once':<28}{together:>9.2f}   {together / BUDGET:.2f}x of the {BUDGET:.0f} s budget")
    cluster()


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    command = [str(plane.kubectl), f"--kubeconfig={plane.kubeconfig}", *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True).stdout


def wait(check: Callable[[], bool], timeout: float = 180) -> float:
    started, deadline = time.monotonic(), time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("not ready in time")
        time.sleep(0.1)
    return time.monotonic() - started


def cluster() -> None:
    image = "lathe.local/base:" + images()["base"].stem.removeprefix("base-")
    plane, seconds = timed(ControlPlane)
    node = Node(plane)
    try:
        started = time.monotonic()
        node.start()
        ready = '{.status.conditions[?(@.type=="Ready")].status}'
        wait(lambda: kubectl(plane, "get", "node", node.name, "-o", f"jsonpath={ready}") == "True")
        node_ready = time.monotonic() - started
        container = {"name": "main", "image": image, "imagePullPolicy": "Never", "command": ["python3.11", "-c", "1"]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "first", "namespace": "default"}}
        pod["spec"] = {"restartPolicy": "Never", "containers": [container]}
        started = time.monotonic()
        kubectl(plane, "apply", "-f", "-", stdin=json.dumps(pod))
        wait(lambda: kubectl(plane, "get", "pod", "first", "-o", "jsonpath={.status.phase}") == "Succeeded")
        first_pod = time.monotonic() - started
    finally:
        node.stop()
        plane.stop()
    print(f"{'control plane (baseline)':<28}{seconds:>9.2f}")
    print(f"{'node Ready':<28}{node_ready:>9.2f}   {node_ready / seconds:.2f}x the control plane")
    print(f"{'first pod run':<28}{first_pod:>9.2f}   {first_pod / seconds:.2f}x the control plane")


if __name__ == "__main__":
    main()
