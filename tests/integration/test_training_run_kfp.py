"""TrainingRun against the Kubeflow Pipelines API (the fake in tests/servers/kfp_fake.py, through kfp.Client)."""

from __future__ import annotations

import copy
import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lathe_pipelines import training
from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl, OperatorProcess
from tests.integration.test_dataset import dataset, raw  # noqa: F401  (fixtures)
from tests.servers.controlplane import ControlPlane
from tests.servers.kfp_fake import FakeKfp
from tests.servers.s3 import S3Server

RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun.yaml")


@pytest.fixture
def kfp() -> Iterator[FakeKfp]:
    fake = FakeKfp().start()
    yield fake
    fake.stop()


def test_kfp_run_is_created_once_followed_and_recorded(
    control_plane: ControlPlane,
    kubectl: Kubectl,
    namespace: str,
    raw: Any,
    s3: S3Server,
    kfp: FakeKfp,
    tmp_path: Path,
) -> None:
    store = {
        "LATHE_STORE_URI": f"s3://lathe-{namespace}",
        "LATHE_STORE_ENDPOINT": s3.endpoint,
        "LATHE_STORE_ACCESS_KEY": s3.access_key,
        "LATHE_STORE_SECRET_KEY": s3.secret_key,
    }
    env = {
        **store,
        "LATHE_EXECUTOR": "local",
        "LATHE_PIPELINE_BACKEND": "kfp",
        "LATHE_KFP_HOST": kfp.url,
        "LATHE_KFP_UI_URL": "https://kubeflow.example.com/pipeline",
    }

    started: list[OperatorProcess] = []

    def start() -> OperatorProcess:
        started.append(OperatorProcess(control_plane, namespace, tmp_path / "operator.log", extra_env=env))
        return started[-1]

    raw(digits())
    try:
        check_run(start, kubectl, namespace, raw, kfp, tmp_path, store)
    finally:
        for process in started:
            process.kill(signal.SIGTERM)


def check_run(
    start: Any,
    kubectl: Kubectl,
    namespace: str,
    raw: Any,
    kfp: FakeKfp,
    tmp_path: Path,
    store: dict[str, str],
) -> None:
    operator = start()
    # a run whose Dataset does not exist yet waits without asking the KFP API anything (a thousand waiting
    # runs would be a thousand list calls a poll)
    waiting = copy.deepcopy(RUN)
    waiting["metadata"]["name"], waiting["spec"]["dataset"]["name"] = "waits", "not-yet"
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(waiting))
    eventually(lambda: "DatasetNotFound" in str(kubectl.get("trainingrun", "waits", "-n", namespace).get("status")))
    assert kfp.requests == []
    kubectl.run("delete", "trainingrun", "waits", "-n", namespace)
    manifest = copy.deepcopy(RUN)
    manifest["spec"]["model"]["hyperparameters"] = {"hidden": [32], "epochs": 8}
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket) + "---\n" + yaml.safe_dump(manifest))
    [run] = eventually(lambda: list(kfp.runs.values()), timeout=180)
    status = eventually(
        lambda: (
            kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"].get("runId")
            and kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"]
        ),
        timeout=60,
    )
    assert status["runId"] == run["run_id"]
    assert status["runUrl"] == f"https://kubeflow.example.com/pipeline/#/runs/details/{run['run_id']}"
    assert kfp.experiments[run["experiment_id"]]["display_name"] == "digits"  # spec.pipeline.experiment
    parameters = run["runtime_config"]["parameters"]
    assert parameters["dataset_version"] == status["datasetVersion"] and parameters["seed"] == 42
    executors = run["pipeline_spec"]["platform_spec"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-train-model"]["nodeSelector"]["labels"] == {
        "cloud.google.com/gke-accelerator": "nvidia-tesla-t4"
    }
    container = run["pipeline_spec"]["pipeline_spec"]["deploymentSpec"]["executors"]["exec-train-model"]["container"]
    assert container["resources"]["accelerator"]["resourceCount"] == "1"

    operator.kill(signal.SIGKILL)  # restart while the run is in flight: it is looked up, not created again
    log = tmp_path / "operator.log"
    before = log.read_text().count("Handler 'reconcile_training_run'")
    operator = start()
    eventually(lambda: log.read_text().count("Handler 'reconcile_training_run'") > before, timeout=60)
    kfp.set_state(run["run_id"], "RUNNING")

    kfp.down = True  # the API goes away: Degraded, retried with back-off, still one run afterwards
    eventually(
        lambda: (
            next(
                c
                for c in kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"]["conditions"]
                if c["type"] == "Ready"
            )["reason"]
            == "PipelineBackendUnavailable"
        ),
        timeout=60,
    )
    kfp.down = False

    # Play the KFP controller: execute the submitted run for real, then mark it succeeded.
    saved = {k: os.environ.get(k) for k in store}
    os.environ.update(store)
    try:
        result = training.run_local(parameters, tempfile.mkdtemp(prefix="kfp-play-"), resources={})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert result["passed"] and result["version"] == 1
    kfp.set_state(run["run_id"], "SUCCEEDED")
    eventually(
        lambda: (
            next(
                c
                for c in kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"]["conditions"]
                if c["type"] == "Ready"
            )["reason"]
            == "Registered"
        ),
        timeout=120,
    )
    final = kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"]
    assert final["model"]["version"] == 1 and final["metrics"]["accuracy"] > 0.9
    assert len(kfp.runs) == 1 and sum(1 for m, p in kfp.requests if m == "POST" and p.endswith("/runs")) == 1
