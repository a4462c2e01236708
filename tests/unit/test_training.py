"""Training steps with plain values, the components via python_func, and the compiled pipeline IR."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml

from lathe_pipelines import training
from lathe_pipelines.components.prepare import prepare_data
from lathe_pipelines.sample_data import digits
from lathe_pipelines.steps.classifier import TrainingFailed, train
from lathe_pipelines.steps.gate import describe, evaluate
from lathe_pipelines.steps.metrics import metrics
from lathe_pipelines.steps.split import split
from tests.conftest import ROOT

GOLDEN = ROOT / "pipelines/compiled/training.yaml"


def test_split_is_seeded_and_stratified() -> None:
    frame = digits()
    a, b = split(frame, "label", 7), split(frame, "label", 7)
    assert np.array_equal(a.y_test, b.y_test) and not np.array_equal(a.y_test, split(frame, "label", 8).y_test)
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == len(frame)
    shares = np.bincount(a.y_test, minlength=10) / len(a.y_test)
    assert np.allclose(shares, np.bincount(a.y_train, minlength=10) / len(a.y_train), atol=0.01)
    assert "label" not in a.features and len(a.features) == 64


def test_training_is_reproducible_and_learns() -> None:
    parts = split(digits(), "label", 1)
    runs = [
        train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 3}, 1) for _ in range(2)
    ]
    weights = [next(r.model.net.parameters()).detach().numpy() for r in runs]
    assert np.array_equal(weights[0], weights[1])
    assert runs[0].history[-1]["valAccuracy"] > 0.85 and runs[0].device in ("cpu", "cuda")


@pytest.mark.parametrize(
    ("model_type", "params", "reason"),
    [
        ("transformer", {}, "UnknownModelType"),
        ("mlp", {"layers": 3}, "InvalidHyperparameters"),
        ("mlp", {"epochs": 2}, "NaNLoss"),
    ],
)
def test_bad_training_input_fails_with_a_reason(model_type: str, params: dict[str, Any], reason: str) -> None:
    parts = split(digits().iloc[:300], "label", 1)
    x = parts.x_train.copy()
    x[3, 5] = np.nan  # a missing value the data let through
    with pytest.raises(TrainingFailed) as error:
        train(x, parts.y_train, parts.x_val, parts.y_val, 10, model_type, params, 1)
    assert error.value.reason == reason


def test_metrics() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])
    result = metrics(logits, np.array([0, 1, 1, 1]), ["a", "b"])
    assert result["accuracy"] == 0.75 and result["recall_a"] == 1.0 and result["recall_b"] == pytest.approx(2 / 3)
    assert result["macro_f1"] == pytest.approx((0.6667 + 0.8) / 2, abs=1e-3)


def test_gates_use_ranges_and_the_baseline() -> None:
    gates = [
        {"metric": "accuracy", "min": 0.9},
        {"metric": "macro_f1", "maxRegression": 0.02},
        {"metric": "loss", "maxRegression": 0.05},
        {"metric": "auc", "min": 0.5},
    ]
    results = evaluate(gates, {"accuracy": 0.95, "macro_f1": 0.90, "loss": 0.2}, {"macro_f1": 0.93, "loss": 0.1})
    assert [r["passed"] for r in results] == [True, False, False, False]
    assert results[1]["min"] == pytest.approx(0.91) and results[2]["max"] == pytest.approx(0.15)
    assert describe(results[1]) == "macro_f1 = 0.9000, needs >= 0.9100"
    assert evaluate([{"metric": "macro_f1", "maxRegression": 0.02}], {"macro_f1": 0.5}, None)[0]["passed"]


def test_component_is_a_typed_plain_function() -> None:
    assert prepare_data.python_func.__annotations__["seed"] is int
    assert prepare_data.component_spec.inputs["version"].type == "String"


def test_gpu_node_pool_settings_reach_the_compiled_ir() -> None:
    resources = {
        "gpus": 2,
        "acceleratorType": "nvidia-tesla-t4",
        "cpu": "4",
        "memory": "8Gi",
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    docs = list(yaml.safe_load_all(training.compile_yaml(training.build(resources))))
    pipeline, platform = docs[0], docs[1]
    container = pipeline["deploymentSpec"]["executors"]["exec-train-model"]["container"]
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert container["resources"]["accelerator"]["resourceCount"] == "2"
    assert container["resources"]["resourceCpuLimit"] == "4" and container["resources"]["resourceMemoryLimit"] == "8Gi"
    train = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train-model"]
    assert train["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4", "pool": "gpu"}
    assert train["tolerations"] == [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "operator": "Exists"}]
    prepare = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-prepare-data"]
    assert prepare["secretAsEnv"][0]["secretName"] == "lathe-store"


def test_compiled_pipeline_matches_the_checked_in_yaml() -> None:
    assert GOLDEN.read_text() == training.compile_yaml(training.build()), "run `make pipelines`"


@pytest.mark.parametrize("dynamo", [False, True])
def test_both_onnx_exporters_pass_parity(dynamo: bool, tmp_path: Any) -> None:
    from lathe_pipelines.steps.export import export, parity

    parts = split(digits().iloc[:400], "label", 3)
    trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 1, "hidden": [16]}, 3)
    export(trained.model, len(parts.features), tmp_path / "m.onnx", dynamo=dynamo)
    assert parity(trained.model, tmp_path / "m.onnx", parts.x_test)["argmaxAgreement"] == 1.0


def test_parity_mismatch_is_refused(tmp_path: Any) -> None:
    import torch

    from lathe_pipelines.steps.export import export, parity

    parts = split(digits().iloc[:400], "label", 3)
    trained = train(parts.x_train, parts.y_train, parts.x_val, parts.y_val, 10, "mlp", {"epochs": 1, "hidden": [16]}, 3)
    export(trained.model, len(parts.features), tmp_path / "m.onnx")
    with torch.no_grad():  # the torch model moves on after export: the ONNX file no longer matches it
        trained.model.net[-1].bias += 1.0
    with pytest.raises(TrainingFailed) as error:
        parity(trained.model, tmp_path / "m.onnx", parts.x_test)
    assert error.value.reason == "ParityMismatch" and "max |logit diff|" in str(error.value)
