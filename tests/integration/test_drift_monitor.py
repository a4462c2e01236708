"""DriftMonitor against a real operator, real model servers, the real S3 server and a real Prometheus.

Two deployments of the same model get the same digits; one of them sees them darker (half
the ink). Each has a DriftMonitor over its request logs: the darker one drifts, the other
does not, with live accuracy from feedback; the operator's gauges reach Prometheus.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess, stop_local_servers
from tests.integration.registry import registry
from tests.integration.test_model_deployment_local import apply, base, ready, status
from tests.integration.test_model_server import call
from tests.servers.controlplane import ControlPlane
from tests.servers.process import free_port
from tests.servers.prometheus import Prometheus
from tests.servers.s3 import S3Server

SAMPLES = 600


@pytest.fixture
def operator(
    control_plane: ControlPlane, s3: S3Server, prometheus: Prometheus, namespace: str, tmp_path: Path
) -> Iterator[OperatorProcess]:
    port = free_port()
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_LOCAL_DIR": str(tmp_path / "serving"),
        "LATHE_METRICS_PORT": str(port),
    }
    process = OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env)
    prometheus.scrape([f"127.0.0.1:{port}"])
    yield process
    process.kill(signal.SIGTERM)
    stop_local_servers(tmp_path / "serving")


def monitor(kubectl: Kubectl, namespace: str, name: str, deployment: str) -> None:
    manifest = {
        "apiVersion": "lathe.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": name},
        "spec": {
            "deployment": deployment,
            "interval": "5s",
            "window": {"duration": "1h", "minSamples": 500},
            "accuracy": {"min": 0.5, "minLabelled": 50},
        },
    }
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))


def drift_status(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return dict(kubectl.get("driftmonitor", name, "-n", namespace).get("status") or {})


def send(url: str, rows: np.ndarray, labels: list[str], prefix: str) -> None:
    for i in range(SAMPLES):
        code, _ = call(
            url, "/api/v1.0/predictions", {"data": {"ndarray": [rows[i].tolist()]}, "meta": {"puid": f"{prefix}{i}"}}
        )
        assert code == 200
        if i % 4 == 0:  # ground truth for a quarter of the requests
            body = {"response": {"meta": {"puid": f"{prefix}{i}"}}, "truth": {"data": {"ndarray": [labels[i]]}}}
            assert call(url, "/api/v1.0/feedback", body)[0] == 200


def test_darker_digits_drift_plain_ones_do_not_and_prometheus_sees_both(
    kubectl: Kubectl, namespace: str, s3: S3Server, prometheus: Prometheus, operator: OperatorProcess
) -> None:
    models = registry(s3, namespace, broken=False)
    rows = models["rows"]
    labels = [str(v) for v in __import__("lathe_pipelines.sample_data", fromlist=["digits"]).digits()["label"]]
    for name in ("plain", "dark"):
        apply(kubectl, namespace, name, logging={"sampleRate": 1.0})
    for name in ("plain", "dark"):
        eventually(lambda n=name: ready(kubectl, namespace, n) == ("True", "Available"), timeout=120)
    send(base(status(kubectl, namespace, "plain")["endpoint"]), rows, labels, "p")
    send(base(status(kubectl, namespace, "dark")["endpoint"]), np.round(rows * 0.5), labels, "d")
    monitor(kubectl, namespace, "plain", "plain")
    monitor(kubectl, namespace, "dark", "dark")

    def settled(name: str) -> dict[str, Any]:
        found = drift_status(kubectl, namespace, name)
        assert found.get("samples") == SAMPLES, found  # a check whose window holds every logged request
        return found

    plain = eventually(lambda: settled("plain"), timeout=180)
    dark = eventually(lambda: settled("dark"), timeout=60)
    assert plain["verdict"] == "NoDrift" and dark["verdict"] == "Drift", (plain, dark)
    assert (
        dark["driftShare"] >= 0.5 and dark["features"][0]["drifted"] and dark["features"][0]["name"].startswith("pixel")
    )
    assert plain["labelledSamples"] == SAMPLES // 4 and 0.5 < plain["liveAccuracy"] <= 1
    assert plain["reportUri"].endswith(".html") and dark["reference"] == models["dataset_version"]
    conditions = {c["type"]: c for c in dark["conditions"]}
    assert conditions["Ready"]["reason"] == "DriftDetected" and conditions["Degraded"]["status"] == "True"
    events = kubectl.run("get", "events", "-n", namespace, "--field-selector", "reason=DriftDetected").stdout
    assert "dark" in events
    page = models["store"].get(plain["reportUri"].split(f"lathe-{namespace}/", 1)[1]).decode()
    assert "<svg" in page and "NoDrift" in page and "http" not in page.split("</style>")[0]  # nothing fetched

    def scraped() -> dict[str, float]:
        found = prometheus.query('lathe_drift_detected{monitor=~"plain|dark"}')
        values = {r["metric"]["monitor"]: float(r["value"][1]) for r in found}
        assert values == {"plain": 0.0, "dark": 1.0}, values
        return values

    def accuracy() -> list[dict[str, Any]]:  # set after the verdict in one check: a scrape may fall between
        found = prometheus.query('lathe_drift_live_accuracy{monitor="plain"}')
        assert found and float(found[0]["value"][1]) == pytest.approx(plain["liveAccuracy"]), found
        return found

    eventually(scraped, timeout=60)
    eventually(accuracy, timeout=30)
    assert prometheus.query('lathe_drift_column_drifted{monitor="dark"} == 1')
