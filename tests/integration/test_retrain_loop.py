"""The closed loop against a real operator: drift, a retrain on labelled traffic, the new version promoted.

Darker digits reach a served model with ground truth for a quarter of them; a DriftMonitor
with ``action: retrain`` finds the drift, writes the labelled traffic merged with the
training data, publishes it as a validated Dataset version, trains on it (kfp.local), offers
the new version to the ModelDeployment as its canary and sees it promoted. The operator is
SIGKILLed in the middle of the loop: the restarted one carries on and starts nothing twice.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lathe_core.registry import ModelRegistry
from lathe_pipelines.sample_data import digits
from tests.conftest import eventually
from tests.integration.conftest import Kubectl, OperatorProcess, stop_local_servers
from tests.integration.registry import MODEL, registry
from tests.integration.test_drift_monitor import SAMPLES, drift_status, send
from tests.integration.test_model_deployment_local import apply, base, ready, status
from tests.servers.controlplane import ControlPlane
from tests.servers.s3 import S3Server

MONITOR = {
    "apiVersion": "lathe.dev/v1alpha1",
    "kind": "DriftMonitor",
    "metadata": {"name": "loop"},
    "spec": {
        "deployment": "web",
        "interval": "5s",
        "window": {"duration": "1h", "minSamples": 500},
        "action": "retrain",
        "retrain": {
            "cooldown": "1h",
            "data": {"minLabelled": 50},
            "trainingRunTemplate": {
                "model": {"type": "mlp", "hyperparameters": {"hidden": [64], "epochs": 8}, "seed": 3},
                "gates": [{"metric": "accuracy", "min": 0.5}],
                "pipeline": {"backend": "local"},
            },
        },
    },
}


@pytest.fixture
def start_operator(control_plane: ControlPlane, s3: S3Server, namespace: str, tmp_path: Path) -> Iterator[Any]:
    env = {
        "LATHE_EXECUTOR": "local",
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
        "LATHE_LOCAL_DIR": str(tmp_path / "serving"),
    }
    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        started.append(OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env))
        return started[-1]

    yield start
    for process in started:
        process.kill(signal.SIGTERM)
    stop_local_servers(tmp_path / "serving")


def last_retrain(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    retrains = drift_status(kubectl, namespace, "loop").get("retrains") or []
    assert retrains, drift_status(kubectl, namespace, "loop")
    return dict(retrains[-1])


def drifted_traffic(kubectl: Kubectl, namespace: str, models: dict[str, Any]) -> list[str]:
    """Serve version 2 of the registry with request logging, send it darker digits with ground truth for a
    quarter of them; the labels of the training data, for counting rows later."""
    apply(kubectl, namespace, "web", logging={"sampleRate": 1.0}, canary={"version": 2, "steps": [100]})
    eventually(lambda: ready(kubectl, namespace, "web") == ("True", "CanaryPromoted"), timeout=120)
    labels = [str(v) for v in digits()["label"]]
    send(base(status(kubectl, namespace, "web")["endpoint"]), np.round(models["rows"] * 0.5), labels, "d")
    return labels


def test_drift_retrains_on_labelled_traffic_and_the_new_version_is_promoted_once_despite_a_sigkill(
    kubectl: Kubectl, namespace: str, s3: S3Server, start_operator: Any
) -> None:
    models = registry(s3, namespace, broken=False)  # versions 1 and 2
    operator = start_operator()
    labels = drifted_traffic(kubectl, namespace, models)
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(MONITOR))

    def training() -> dict[str, Any]:
        record = last_retrain(kubectl, namespace)
        assert record["phase"] in ("Training", "Canary", "Promoted"), record
        return record

    record = eventually(training, timeout=240)
    operator.kill(signal.SIGKILL)  # mid-loop: the TrainingRun exists, its pipeline may still run
    start_operator()

    def promoted() -> dict[str, Any]:
        record = last_retrain(kubectl, namespace)
        if record["phase"] in ("Failed", "RolledBack"):
            raise RuntimeError(f"the retrain ended {record['phase']}: {record}")  # fail now, not at the timeout
        assert record["phase"] == "Promoted", record
        return record

    record = eventually(promoted, timeout=420)
    assert record["name"] == "loop-retrain-1" and record["trainingRun"] == "loop-retrain-1"
    assert record["modelVersion"] == 3 and record["dataset"] == "loop-retrain"
    monitor = drift_status(kubectl, namespace, "loop")
    assert [r["name"] for r in monitor["retrains"]] == ["loop-retrain-1"]

    runs = kubectl.get("trainingruns", "-n", namespace, "-l", "lathe.dev/drift-monitor=loop")["items"]
    assert [r["metadata"]["name"] for r in runs] == ["loop-retrain-1"]  # one retrain, across the restart
    assert runs[0]["metadata"]["ownerReferences"][0]["kind"] == "DriftMonitor"
    registry_ = ModelRegistry(models["store"], namespace, MODEL)
    assert registry_.versions() == [1, 2, 3] and registry_.promoted() == 3
    card = registry_.card(3)
    data = kubectl.get("dataset", "loop-retrain", "-n", namespace)["status"]
    assert card["dataset"] == {"name": "loop-retrain", "version": data["currentVersion"]}
    assert data["rows"] == len(labels) + SAMPLES // 4  # the training data plus the labelled traffic

    served = status(kubectl, namespace, "web")
    assert served["traffic"] == [{"version": 3, "percent": 100}] and served["stable"]["version"] == 3
    md = kubectl.get("modeldeployment", "web", "-n", namespace)
    assert md["spec"]["canary"]["version"] == 2  # spec untouched: the candidate came as an annotation
    assert md["metadata"]["annotations"]["lathe.dev/canary-version"] == "3"
    events = kubectl.run("get", "events", "-n", namespace, "--field-selector", "reason=RetrainPromoted").stdout
    assert "loop-retrain-1" in events
