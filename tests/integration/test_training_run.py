"""TrainingRun end to end in local mode: a real Dataset, a real kfp.local pipeline, a registered ONNX model."""

from __future__ import annotations

import copy
import json
from typing import Any

import onnxruntime as ort
import yaml

from lathe_core.registry import ModelRegistry
from lathe_core.store_s3 import S3Store
from lathe_pipelines.sample_data import digits
from tests.conftest import ROOT, eventually, load_yaml
from tests.integration.conftest import Kubectl
from tests.integration.test_dataset import dataset, operator, raw  # noqa: F401  (fixtures)
from tests.servers.s3 import S3Server

RUN = load_yaml(ROOT / "examples/02-training-run/trainingrun.yaml")


def training_run(name: str, gates: list[dict[str, Any]]) -> str:
    manifest = copy.deepcopy(RUN)
    manifest["metadata"]["name"] = name
    manifest["spec"]["pipeline"] = {"backend": "local"}
    manifest["spec"]["model"]["hyperparameters"] = {"hidden": [64], "epochs": 12}
    manifest["spec"]["gates"] = gates
    return yaml.safe_dump(manifest)


def ready(kubectl: Kubectl, namespace: str, name: str) -> tuple[str, str]:
    status = kubectl.get("trainingrun", name, "-n", namespace).get("status") or {}
    found = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), {"status": "", "reason": ""})
    return found["status"], found["reason"]


def test_training_run_registers_a_gated_onnx_model(
    kubectl: Kubectl,
    namespace: str,
    raw: Any,
    operator: Any,
    s3: S3Server,
) -> None:
    raw(digits())
    operator()
    # The TrainingRun comes first: it waits for the Dataset, then pins its version.
    kubectl.run(
        "apply", "-n", namespace, "-f", "-", stdin=training_run("digits-mlp-1", [{"metric": "accuracy", "min": 0.9}])
    )
    eventually(lambda: ready(kubectl, namespace, "digits-mlp-1")[1] == "DatasetNotFound", timeout=60)
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=dataset(raw.bucket))
    eventually(lambda: ready(kubectl, namespace, "digits-mlp-1") == ("True", "Registered"), timeout=300)
    run = kubectl.get("trainingrun", "digits-mlp-1", "-n", namespace)["status"]
    data = kubectl.get("dataset", "digits", "-n", namespace)["status"]
    assert run["datasetVersion"] == data["currentVersion"]
    assert run["metrics"]["accuracy"] > 0.9 and run["gates"][0]["passed"] is True
    assert run["model"]["version"] == 1 and run["runId"].startswith("digits-mlp-1-")
    table = kubectl.run("get", "trainingruns", "-n", namespace).stdout
    assert "digits-mlp-1" in table and "True" in table

    registry = ModelRegistry(
        S3Store(s3.endpoint, s3.access_key, s3.secret_key, f"lathe-{namespace}"), namespace, "digits-classifier"
    )
    card = registry.card(1)
    assert card["dataset"] == {"name": "digits", "version": data["currentVersion"]}
    assert card["seed"] == 42 and card["training"]["params"]["hidden"] == [64]
    assert card["pipeline"]["specSha256"] and card["libraries"]["torch"] and card["parity"]["argmaxAgreement"] == 1.0
    session = ort.InferenceSession(registry.onnx(1))
    probe = digits().drop(columns="label").to_numpy(dtype="float32")[:50]
    predicted = session.run(None, {"input": probe})[0].argmax(1)
    assert (predicted == digits()["label"].to_numpy()[:50]).mean() > 0.9

    strict = [{"metric": "accuracy", "min": 0.9999}, {"metric": "macro_f1", "min": 0.5}]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=training_run("digits-mlp-strict", strict))
    eventually(lambda: ready(kubectl, namespace, "digits-mlp-strict") == ("False", "GateFailed"), timeout=300)
    failed = kubectl.get("trainingrun", "digits-mlp-strict", "-n", namespace)["status"]
    assert [g["passed"] for g in failed["gates"]] == [False, True] and failed["phase"] == "Failed"
    message = next(c for c in failed["conditions"] if c["type"] == "Ready")["message"]
    assert "accuracy = 0." in message and ">= 0.9999" in message
    assert registry.versions() == [1] and "model" not in failed
    print(json.dumps(run["metrics"]))
