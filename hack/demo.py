"""The local demo: real servers on loopback, the operator, the examples applied, their status shown.

Run with `make demo`. It grows with each slice toward the full loop (ingest, validate,
train, serve, replay shifted traffic, detect drift, retrain, promote); today it shows the
foundation: every kind accepted, validated and reconciled with honest status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.controlplane import ControlPlane  # noqa: E402
from tests.servers.s3 import S3Server  # noqa: E402


def kubectl(plane: ControlPlane, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run([str(plane.kubectl), f"--kubeconfig={plane.kubeconfig}", *args],
                            input=stdin, capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def main() -> int:
    started = time.monotonic()
    plane, s3 = ControlPlane().start(), S3Server().start()
    print(f"Started kube-apiserver {plane.server} and S3 http://{s3.endpoint} in {time.monotonic() - started:.1f}s")
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "LATHE_METRICS_PORT": "0"}
    operator = subprocess.Popen([sys.executable, "-m", "lathe_operator", "operator", "-n", "demo", "--liveness", ""],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        print(kubectl(plane, "apply", "--server-side", "-f", str(ROOT / "charts/lathe/crds")), end="")
        kubectl(plane, "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=lathe")
        print(kubectl(plane, "create", "namespace", "demo"), end="")
        print(kubectl(plane, "apply", "-n", "demo", "-R", "-f", str(ROOT / "examples")), end="")
        print("\nAn invalid spec is refused by the API server:")
        bad = (ROOT / "examples/02-training-run/trainingrun.yaml").read_text().replace("min: 0.9}", "min: 0.9, max: 0.5}")
        print(kubectl(plane, "apply", "-n", "demo", "-f", "-", stdin=bad.replace("digits-mlp-1", "bad-run")), end="")
        deadline = time.monotonic() + 60
        while "IngestPending" not in kubectl(plane, "get", "lathe", "-n", "demo", "-o", "wide") and time.monotonic() < deadline:
            time.sleep(1)
        print("\n$ kubectl get lathe -n demo -o wide")
        print(kubectl(plane, "get", "lathe", "-n", "demo", "-o", "wide"))
        print("$ kubectl get jobs -n demo")
        print(kubectl(plane, "get", "jobs", "-n", "demo"))
        print("$ kubectl get events -n demo")
        print(kubectl(plane, "get", "events", "-n", "demo", "--sort-by=.lastTimestamp"))
    finally:
        operator.terminate()
        operator.wait(30)
        s3.stop()
        plane.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
