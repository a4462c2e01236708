"""Invalid specs are refused by the API server (schema and CEL) with the field named, and nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, load_yaml
from tests.integration.conftest import Kubectl

EXAMPLE = {
    "Dataset": load_yaml(ROOT / "examples/01-dataset/dataset.yaml"),
    "TrainingRun": load_yaml(ROOT / "examples/02-training-run/trainingrun.yaml"),
    "ModelDeployment": load_yaml(ROOT / "examples/05-canary/modeldeployment.yaml"),
    "DriftMonitor": load_yaml(ROOT / "examples/04-drift-monitor/driftmonitor.yaml"),
}


def variant(kind: str, change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    manifest = copy.deepcopy(EXAMPLE[kind])
    for key in drop:
        manifest["spec"].pop(key)
    manifest["spec"].update(change)
    manifest["metadata"]["name"] = "invalid"
    return manifest


S3 = {"uri": "s3://raw/digits.csv"}
# (kind, spec change, keys to drop, substrings the error must contain: the field and the reason)
CASES = [
    (
        "Dataset",
        {"source": {**S3, "configMap": {"name": "c", "key": "k"}}},
        (),
        ["spec.source", "exactly one of source.uri"],
    ),
    ("Dataset", {"source": {"format": "csv"}}, (), ["spec.source", "exactly one of source.uri"]),
    ("Dataset", {"source": {"uri": "ftp://host/data.csv"}}, (), ["spec.source.uri", "should match"]),
    ("Dataset", {"source": {**S3, "format": "xlsx"}}, (), ["spec.source.format", "Unsupported value"]),
    (
        "Dataset",
        {"source": {"uri": "https://h/d.csv", "credentialsSecret": {"name": "s"}}},
        (),
        ["spec.source", "credentialsSecret applies to s3"],
    ),
    ("Dataset", {"expectations": [{"type": "values_are_fine"}]}, (), ["spec.expectations[0].type"]),
    ("Dataset", {"retention": {"keep": 0}}, (), ["spec.retention.keep", "greater than or equal to 1"]),
    (
        "Dataset",
        {"schema": [{"name": "pixel_0", "type": "float"}], "target": "label"},
        (),
        ["spec.target", "target must be one of the declared schema columns"],
    ),
    ("Dataset", {"refresh": {"interval": "1h", "cron": "0 * * * *"}}, (), ["spec.refresh", "exactly one of refresh"]),
    (
        "TrainingRun",
        {"gates": [{"metric": "accuracy", "min": 0.9, "max": 0.5}]},
        (),
        ["spec.gates[0]", "min must be <= max"],
    ),
    ("TrainingRun", {"gates": [{"metric": "accuracy"}]}, (), ["spec.gates[0]", "at least one of min, max"]),
    (
        "TrainingRun",
        {"resources": {"acceleratorType": "nvidia-tesla-t4"}},
        (),
        ["spec.resources.gpus", "needs gpus > 0"],
    ),
    ("TrainingRun", {"dataset": {"name": "digits", "version": "v3"}}, (), ["spec.dataset.version", "should match"]),
    ("TrainingRun", {"model": {"name": "m", "type": "transformer"}}, (), ["spec.model.type", "Unsupported value"]),
    ("TrainingRun", {}, ("dataset",), ["spec.dataset", "Required value"]),
    (
        "TrainingRun",
        {"model": {"name": "m", "hyperparameters": {"epochs": 10_000_000}}},
        (),
        ["spec.model.hyperparameters.epochs", "less than or equal to 10000"],
    ),
    (
        "TrainingRun",
        {"model": {"name": "m", "hyperparameters": {"hidden": [64, 1_000_000]}}},
        (),
        ["spec.model.hyperparameters.hidden[1]", "less than or equal to 8192"],
    ),
    (
        "TrainingRun",
        {"model": {"name": "m", "hyperparameters": {"learningRate": 0.1}}},
        (),
        ['unknown field "spec.model.hyperparameters.learningRate"'],
    ),
    ("TrainingRun", {"model": {"name": "m", "hyperparameters": {"lr": 0}}}, (), ["spec.model.hyperparameters.lr"]),
    (
        "TrainingRun",
        {"resources": {"tolerations": [{"key": "gpu", "operator": "Exists", "value": "yes"}]}},
        (),
        ["spec.resources.tolerations[0].value", "must be empty when operator is Exists"],
    ),
    (
        "TrainingRun",
        {"resources": {"tolerations": [{"operator": "Equal", "value": "x"}]}},
        (),
        ["spec.resources.tolerations[0].operator", "empty key needs operator Exists"],
    ),
    (
        "TrainingRun",
        {"resources": {"tolerations": [{"key": "gpu", "effect": "NoSchedule", "tolerationSeconds": 60}]}},
        (),
        ["spec.resources.tolerations[0].tolerationSeconds", "needs effect NoExecute"],
    ),
    (
        "TrainingRun",
        {"resources": {"tolerations": [{"key": "not a key!", "operator": "Exists"}]}},
        (),
        ["spec.resources.tolerations[0].key", "should match"],
    ),
    ("ModelDeployment", {"canary": {"version": 1}}, (), ["spec.canary.version", "must differ from model.version"]),
    ("ModelDeployment", {"canary": {"version": 2, "steps": [50, 10]}}, (), ["spec.canary", "ascending"]),
    (
        "ModelDeployment",
        {"canary": {"version": 2, "steps": [10, 101]}},
        (),
        ["spec.canary.steps[1]", "less than or equal to 100"],
    ),
    ("ModelDeployment", {"mode": "batch"}, ("canary",), ["spec", "mode batch needs spec.batch"]),
    ("ModelDeployment", {"mode": "edge"}, (), ["spec", "apply to mode online only"]),
    (
        "ModelDeployment",
        {
            "mode": "batch",
            "batch": {"dataset": {"name": "digits"}},
            "graph": {"transformers": [{"name": "scale", "image": "example/scale:1"}]},
        },
        ("canary",),
        ["spec", "graph applies to mode online only"],
    ),
    (
        "ModelDeployment",
        {"traffic": [{"version": 1, "percent": 80}, {"version": 2, "percent": 10}]},
        (),
        ["spec.traffic", "add up to 100"],
    ),
    (
        "ModelDeployment",
        {"traffic": [{"version": 1, "percent": 50}, {"version": 7, "percent": 50}]},
        (),
        ["spec.traffic", "only model.version and canary.version"],
    ),
    ("ModelDeployment", {"shadow": {"version": 2}}, (), ["spec.shadow.version", "must differ from canary.version"]),
    (
        "ModelDeployment",
        {"traffic": [{"version": 1, "percent": 50}, {"version": 1, "percent": 50}]},
        (),
        ["spec.traffic", "each version once"],
    ),
    ("ModelDeployment", {"autoscaling": {"minReplicas": 1, "maxReplicas": 3}}, (), ["spec", "replicas or autoscaling"]),
    (
        "ModelDeployment",
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
        ("replicas",),
        ["spec.autoscaling", "minReplicas must be <= maxReplicas"],
    ),
    ("DriftMonitor", {"action": "retrain"}, (), ["spec", "action retrain needs spec.retrain"]),
    ("DriftMonitor", {"interval": "5 minutes"}, (), ["spec.interval", "should match"]),
    ("DriftMonitor", {"interval": "0s"}, (), ["spec.interval", "should match"]),  # would check without pause
    ("DriftMonitor", {"window": {"duration": "500ms"}}, (), ["spec.window.duration", "should match"]),
    ("Dataset", {"refresh": {"cron": "60 * * * *"}}, (), ["spec.refresh.cron", "should match"]),
    ("Dataset", {"refresh": {"cron": "0 24 * * mon"}}, (), ["spec.refresh.cron", "should match"]),
    ("DriftMonitor", {"driftShare": 1.5}, (), ["spec.driftShare", "less than or equal to 1"]),
    ("DriftMonitor", {"tests": {"numeric": "magic"}}, (), ["spec.tests.numeric", "Unsupported value"]),
    ("DriftMonitor", {}, ("deployment",), ["spec", "without spec.deployment, spec.reference is needed"]),
    ("DriftMonitor", {"reference": {"name": "digits"}}, ("deployment",), ["spec", "source logs needs spec.deployment"]),
    ("DriftMonitor", {"source": {"type": "dataset"}}, (), ["spec.source", "source type dataset needs source.dataset"]),
]


@pytest.mark.parametrize(
    ("kind", "change", "drop", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_invalid_spec_is_rejected_and_not_stored(
    kubectl: Kubectl, namespace: str, kind: str, change: dict[str, Any], drop: tuple[str, ...], expected: list[str]
) -> None:
    result = kubectl.run(
        "apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(variant(kind, change, drop)), check=False
    )
    assert result.returncode != 0, f"accepted: {change}"
    for text in expected:
        assert text in result.stderr, f"{text!r} not in: {result.stderr}"
    missing = kubectl.run("get", kind.lower(), "invalid", "-n", namespace, check=False)
    assert "NotFound" in missing.stderr


def test_training_run_dataset_and_model_are_immutable(kubectl: Kubectl, namespace: str) -> None:
    run = EXAMPLE["TrainingRun"]
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(run))
    changed = copy.deepcopy(run)
    changed["spec"]["dataset"]["name"] = "other-data"
    result = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(changed), check=False)
    assert result.returncode != 0 and "spec.dataset" in result.stderr and "is immutable" in result.stderr
    changed = copy.deepcopy(run)
    changed["spec"]["model"]["seed"] = 7
    result = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(changed), check=False)
    assert result.returncode != 0 and "spec.model" in result.stderr
    stored = kubectl.get("trainingrun", run["metadata"]["name"], "-n", namespace)
    assert stored["spec"]["dataset"]["name"] == "digits" and stored["spec"]["model"]["seed"] == 42
    assert stored["metadata"]["generation"] == 1


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("Dataset", "d" * 64, "at most 63 characters"),
        ("DriftMonitor", "m" * 64, "at most 63 characters"),
        ("ModelDeployment", "1web", "must start with a letter"),
    ],
)
def test_names_that_cannot_label_or_name_children_are_refused(
    kubectl: Kubectl, namespace: str, kind: str, name: str, expected: str
) -> None:
    manifest = variant(kind, {})
    manifest["metadata"]["name"] = name
    result = kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0 and expected in result.stderr, result.stderr
    manifest["metadata"]["name"] = "d" * 63 if kind != "ModelDeployment" else "web-1"
    kubectl.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(manifest))  # the limits themselves pass


def test_there_are_at_least_fifteen_cases() -> None:
    assert len(CASES) >= 15
